"""The backend-neutral model and layer plans (``miamind._arch``) both backends build from."""

import inspect
import subprocess
import sys

import pytest

from miamind._arch.fastnet import ConvGroupSpec, FastNetSpec
from miamind._arch.flowcnn import FlowCNNSpec
from miamind._arch.mia import MIA_VARIANTS, MIASpec, resolve_mia_args
from miamind._arch.plan import LayerOps, takes_spec
from miamind._arch.resnet import RESNET_VARIANTS, ResNetSpec
from miamind._arch.unet import ATTENTION_POINTS, UNetSpec


def test_plans_import_neither_framework():
    code = (
        "import sys, miamind._arch.fastnet, miamind._arch.flowcnn, miamind._arch.mia, miamind._arch.resnet, "
        "miamind._arch.unet, miamind._lazy, miamind._registry; "
        "bad = [m for m in ('torch', 'mindspore', 'timm') if m in sys.modules]; assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_unet_plan_widths_and_attention_points():
    spec = UNetSpec(attention="mia", attention_at="skip", width=8, depth=2, in_chans=3)
    assert spec.attention_at == ("skip",) and spec.multiple == 4 and spec.widths == [8, 16, 32]
    assert [(i, o, pool) for i, o, _, pool in spec.encoder()] == [(3, 8, False), (8, 16, True)]
    assert all(site.spec is None for _, _, site, _ in spec.encoder())
    assert spec.bottleneck()[:2] == (16, 32)
    decoder = spec.decoder()
    assert [(i, o) for i, o, _, _ in decoder] == [(32, 16), (16, 8)]
    assert [(skip.spec, skip.channels, skip.slot) for _, _, skip, _ in decoder] == [
        ("mia", 16, ATTENTION_POINTS["skip"]),
        ("mia", 8, ATTENTION_POINTS["skip"]),
    ]
    assert all(site.spec is None for _, _, _, site in decoder)
    with pytest.raises(ValueError, match=r"unet: unknown attention_at \['middle'\]"):
        UNetSpec(attention_at=("middle",))


def test_fastnet_and_flowcnn_plans():
    fast = FastNetSpec(attention="se", widths=(16, 32))
    assert fast.stem_width == 24 and fast.min_input_size == 1 + 4 and fast.num_features == 32
    assert [(i, o, s.channels, s.dims) for i, o, s in fast.groups()] == [(24, 16, 16, 2), (16, 32, 32, 2)]
    flow = FlowCNNSpec(attention="mia", stages=(8, 16), in_chans=2)
    assert [(i, o, s.dims, s.model) for i, o, s in flow.stage_plan()] == [
        (2, 8, 1, "flowcnn"),
        (8, 16, 1, "flowcnn"),
    ]
    with pytest.raises(ValueError, match="flowcnn: kernel_size must be a positive odd integer"):
        FlowCNNSpec(kernel_size=4)


def test_resnet_plan_follows_timm():
    spec = ResNetSpec(attention="mia", drop_path_rate=0.3, model_name="resnet50")
    stages = spec.blocks(RESNET_VARIANTS["resnet50"].layers, expansion=4)
    assert [len(s) for s in stages] == [3, 4, 6, 3]
    assert [b.stride for s in stages for b in s][:4] == [1, 1, 1, 2]
    assert (stages[0][0].in_chs, stages[0][0].out_chs, stages[-1][-1].out_chs) == (64, 256, 2048)
    rates = [b.drop_path for s in stages for b in s]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3)
    assert {b.attention.model for s in stages for b in s} == {"resnet50"}


def test_takes_spec_gives_the_class_the_spec_signature():
    @takes_spec(FlowCNNSpec)
    class Model:
        def __init__(self, first: int, **kwargs) -> None:
            self.spec = FlowCNNSpec(**kwargs)

    params = inspect.signature(Model).parameters
    assert list(params)[:3] == ["first", "num_classes", "in_chans"]
    assert params["stages"].default == (32, 64, 128)
    assert params["stages"].kind is inspect.Parameter.KEYWORD_ONLY

    with pytest.raises(TypeError, match="must define __init__"):
        takes_spec(FlowCNNSpec)(type("NoInit", (Model,), {}))


def test_mia_args_checks_name_the_layer():
    args = resolve_mia_args(
        "X",
        MIA_VARIANTS["mia"],
        48,
        rd_ratio=1 / 16,
        rd_channels=None,
        kernel_size=3,
        dims=1,
        gate_init="paper",
    )
    assert (args.channels, args.hidden_channels, args.kernel_size, args.dims) == (48, 3, 3, 1)
    with pytest.raises(ValueError, match="X: gate_init='identity' needs a spatial conv bias"):
        resolve_mia_args(
            "X",
            MIA_VARIANTS["mia_code"],
            8,
            rd_ratio=1 / 16,
            rd_channels=None,
            kernel_size=7,
            dims=2,
            gate_init="identity",
        )


class _RecordingOps:
    """A LayerOps that returns ``(op, args)`` tuples and records the order it was called in."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, op: str):
        if op not in LAYER_OPS:
            raise AttributeError(op)

        def build(*args, **kwargs):
            self.calls.append(op)
            return (op, args)

        return build


LAYER_OPS = [n for n in vars(LayerOps) if not n.startswith("_")]


def test_flowcnn_plan_builds_each_stage_attention_first():
    """PyTorch draws each layer's init from the global RNG as it is built, so the order is fixed."""
    ops = _RecordingOps()
    layers = FlowCNNSpec(attention="mia", stages=(4, 8)).build_layers(ops)
    assert [name for name, _ in layers] == ["stages", "drop", "head"]
    stage = ["build_attention", "conv1d", "batch_norm", "relu", "max_pool", "sequential"]
    assert ops.calls == stage * 2 + ["sequential", "dropout", "dense"]
    first = layers[0][1][1][0][0][1][1][0]  # stages -> "0" -> its (name, layer) list
    assert [name for name, _ in first] == ["conv", "bn", "act", "attn", "pool"]


def test_fastnet_and_unet_plans_name_their_layers():
    ops = _RecordingOps()
    fast = FastNetSpec(widths=(8, 16)).build_layers(ops, lambda *a, **k: ("group", a, k))
    assert [name for name, _ in fast] == ["stem", "groups", "head"]
    # the groups (built by the lambda) come between the stem and the head; containers hold no parameters
    assert ops.calls == [
        "conv2d",
        "gelu",
        "sequential",
        "build_attention",
        "build_attention",
        "dense",
        "sequential",
    ]
    group = ConvGroupSpec(bn_momentum=0.4, bn_eps=1e-12, bn_train_gamma=False)
    names = [n for n, _ in group.build_layers(ops, lambda i, o: ("dirac", i, o), 3, 8, "attn")]
    assert names == ["conv1", "pool", "bn1", "conv2", "bn2", "act", "attn"]
    unet = UNetSpec(width=4, depth=2).build_layers(ops, lambda *a, **k: "block", lambda *a: "up")
    assert [name for name, _ in unet] == ["encoder", "bottleneck", "decoder", "head"]


def test_torch_ops_provide_every_layer_op():
    from miamind.models import _ops

    missing = [op for op in LAYER_OPS if not callable(getattr(_ops, op, None))]
    assert not missing


def test_takes_spec_puts_own_keyword_only_arguments_last_and_overrides_annotations():
    @takes_spec(MIASpec, annotations={"act_layer": "str | type"})
    class Layer:
        def __init__(self, channels: int, *, device: str | None = None, **kwargs) -> None:
            self.spec = MIASpec(**kwargs)

    params = inspect.signature(Layer).parameters
    assert list(params)[0] == "channels" and list(params)[-1] == "device"
    assert list(params)[1:-1] == list(inspect.signature(MIASpec).parameters)
    assert params["act_layer"].annotation == "str | type" and params["gate_layer"].annotation == "Any"
    assert Layer(3, kernel_size=5).spec.resolve("L", MIA_VARIANTS["mia"], 32).kernel_size == 5
