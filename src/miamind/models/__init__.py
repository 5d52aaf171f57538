"""Models for the paper's three experiments, each taking any registered attention layer by name.

``create_model(name, num_classes=..., in_chans=..., attention="mia", attention_kwargs=None, **kw)``
builds a model with ``miamind.attention.create_attention(attention, channels, dims=...)`` at fixed,
documented points (``None`` / ``"none"``: ``nn.Identity``, no parameters); ``attention_layers(model)``
lists the inserted layers by qualified name (e.g. for attention-map plots).

================= ============================== ============================================== ========
model             input -> output                attention inserted                             layers
================= ============================== ============================================== ========
resnet18          (N,C,H,W) -> (N,K)             every BasicBlock, after bn2, before the        8
                                                 residual add (``layerS.B.se``, timm's slot)
resnet34          (N,C,H,W) -> (N,K)             same as resnet18                               16
resnet50          (N,C,H,W) -> (N,K)             every Bottleneck, after bn3, before the add    16
reference_resnet  (N,C,H,W) -> (N,K)             every BasicBlock, after bn2, before the add    16
                                                 (``layerS.B.attn``); default ``"mia_code"``
fastnet           (N,C,H,W) -> (N,K)             after each of the 3 conv groups                3
                                                 (``groups.G.attn``)
unet              (N,C,H,W) -> (N,K,H,W)         ``attention_at`` subset of encoder /           4 (dec.)
                                                 bottleneck / decoder / skip; default decoder
                                                 (``decoder.D.conv.attn``)
flowcnn           (N,C,F) -> (N,K)               after each conv stage's ReLU, before pooling,  3
                                                 ``dims=1`` (``stages.S.attn``)
================= ============================== ============================================== ========

The ResNets use a CIFAR stem (3x3 stride-1 conv, no max-pool); fastnet uses airbench's 2x2 "whitening"
stem. Every model runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``, and the 2-D ones with
``channels_last`` models and inputs. Details, parameter names and initialisation notes are in each
module's docstring: :mod:`.resnet`, :mod:`.reference_resnet`, :mod:`.fastnet`, :mod:`.unet`, :mod:`.flowcnn`.
"""

from ._attention import attention_layers, build_attention
from .fastnet import FastNet, fastnet, init_whitening
from .flowcnn import FlowCNN, flowcnn
from .reference_resnet import ReferenceResNet, reference_resnet
from .registry import cannot_hold, create_model, get_model_builder, list_models, register_model

# Importing the model modules registers their names.
from .resnet import CifarResNet, resnet18, resnet34, resnet50
from .unet import UNet, unet

# Last: registers the networks with timm (``timm.create_model("miamind_resnet18")``).
from . import timm_models  # noqa: E402,F401  # isort: skip

__all__ = [
    "create_model",
    "cannot_hold",
    "list_models",
    "register_model",
    "get_model_builder",
    "attention_layers",
    "build_attention",
    "CifarResNet",
    "ReferenceResNet",
    "FastNet",
    "UNet",
    "FlowCNN",
    "init_whitening",
    "resnet18",
    "resnet34",
    "resnet50",
    "reference_resnet",
    "fastnet",
    "unet",
    "flowcnn",
]
