"""The paper's models as MindSpore cells, twins of :mod:`miamind.models` (PyTorch).

``create_model(name, num_classes=..., in_chans=..., attention=None, attention_kwargs=None, **kw)``
takes the same arguments and defaults as :func:`miamind.models.create_model` and builds a
``mindspore.nn.Cell`` with the same layout and forward pass, whose parameters have the PyTorch
model's names (BatchNorm's renamed as :mod:`miamind.mindspore.convert` says), so weights trained in
PyTorch load one-to-one::

    from miamind.models import create_model as create_torch_model
    from miamind.mindspore.convert import torch_to_mindspore, load_into_cell
    from miamind.mindspore.models import create_model

    net = create_model("fastnet", num_classes=10, in_chans=3, attention="mia")
    load_into_cell(net, torch_to_mindspore(torch_model.state_dict()))
    net.set_train(False)

Models: ``resnet18``, ``resnet34``, ``resnet50`` (:mod:`.resnet`), ``fastnet`` (:mod:`.fastnet`),
``unet`` (:mod:`.unet`), ``flowcnn`` (:mod:`.flowcnn`). Attention names are those of
:func:`miamind.mindspore.attention.list_attention`. ``reference_resnet`` (the public MindSpore
code's network) has no twin here. Float32 outputs agree with PyTorch to ~1e-5 in PYNATIVE and GRAPH
mode (``tests/mindspore/test_models.py``).
"""

from ._registry import build_attention, create_model, get_model_builder, list_models, register_model
from .fastnet import FastNet, fastnet  # noqa: E402
from .flowcnn import FlowCNN, flowcnn  # noqa: E402

# Importing the model modules registers their names.
from .resnet import BasicBlock, Bottleneck, CifarResNet, resnet18, resnet34, resnet50  # noqa: E402
from .unet import UNet, unet  # noqa: E402

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "get_model_builder",
    "build_attention",
    "CifarResNet",
    "BasicBlock",
    "Bottleneck",
    "FastNet",
    "UNet",
    "FlowCNN",
    "resnet18",
    "resnet34",
    "resnet50",
    "fastnet",
    "unet",
    "flowcnn",
]
