"""reference_resnet mirrors the MindSpore code's "ResNet-50", which is a ResNet-34 layout."""

from __future__ import annotations

import torch
import torch.nn as nn

from miamind.attention import MIAMindCode
from miamind.models import attention_layers, create_model
from miamind.models.reference_resnet import ReferenceBlock


def test_layout_is_resnet34_with_cifar_stem():
    model = create_model("reference_resnet", num_classes=10, in_chans=3)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.bias is None
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    stages = [getattr(model, f"layer{i}") for i in range(1, 5)]
    assert [len(s) for s in stages] == [3, 4, 6, 3]
    assert all(isinstance(b, ReferenceBlock) for s in stages for b in s)
    assert [s[0].conv2.out_channels for s in stages] == [64, 128, 256, 512]
    assert [s[0].conv1.stride for s in stages] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert model.layer1[0].downsample is None and model.layer2[0].downsample is not None
    assert model.fc.in_features == 512 and model.fc.bias is not None
    # Default attention: the MindSpore code's MIA, one per block, named <stage>.<block>.attn.
    layers = attention_layers(model)
    assert len(layers) == 16 and all(type(m) is MIAMindCode for _, m in layers)
    assert layers[0][0] == "layer1.0.attn" and layers[-1][0] == "layer4.2.attn"


def test_without_attention_it_is_resnet34():
    """Same parameter names, shapes and forward as resnet34: resnet34's weights load and give its logits."""
    torch.manual_seed(0)
    r34 = create_model("resnet34", num_classes=10, in_chans=3, attention=None, zero_init_last=False).eval()
    ref = create_model("reference_resnet", num_classes=10, in_chans=3, attention=None).eval()
    assert sum(p.numel() for p in ref.parameters()) == 21_282_122
    ref.load_state_dict(r34.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), r34(x))


def test_attention_after_bn2_before_residual_add():
    torch.manual_seed(0)
    model = create_model("reference_resnet", num_classes=10, in_chans=3, attention="mia").eval()
    recs = []
    for block in (m for m in model.modules() if isinstance(m, ReferenceBlock)):
        rec = {}
        recs.append((block, rec))
        block.register_forward_pre_hook(lambda m, i, rec=rec: rec.__setitem__("x", i[0].clone()))
        block.bn2.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("bn2", o.clone()))
        block.attn.register_forward_hook(
            lambda m, i, o, rec=rec: rec.update(a_in=i[0].clone(), a_out=o.clone())
        )
        block.register_forward_hook(lambda m, i, o, rec=rec: rec.__setitem__("out", o.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    assert len(recs) == 16
    for block, rec in recs:
        torch.testing.assert_close(rec["a_in"], rec["bn2"], rtol=0, atol=0)
        with torch.no_grad():
            shortcut = rec["x"] if block.downsample is None else block.downsample(rec["x"])
        torch.testing.assert_close(rec["out"], torch.relu(rec["a_out"] + shortcut))
