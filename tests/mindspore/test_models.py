"""MindSpore models (miamind.mindspore.models) against their PyTorch twins (miamind.models).

Parity: same weights (PyTorch state dict -> convert.torch_to_mindspore -> convert.load_into_cell),
same float32 input, eval mode -> outputs within ``RTOL`` of the output scale. Batch-norm statistics
and affine parameters are randomised first: a fresh BN (mean 0, var 1, gamma 1, beta 0, and the
ResNet's zero-initialised last gamma, which would make every block the identity and feed the
attention zeros) would hide swapped or missing BN parameters.

Kept under ~60 s on 2 CPU cores: small widths and inputs; ResNet-50 runs once (1x3x32x32, "mia",
PYNATIVE: a MindSpore CPU forward of it takes ~3-4 s, a GRAPH compile ~4 s more); GRAPH mode covers
flowcnn, fastnet and unet.
"""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip(
    "mindspore", reason="MindSpore backend not installed: pip install miamind[mindspore]"
)
torch = pytest.importorskip("torch")

from miamind.mindspore import convert  # noqa: E402
from miamind.mindspore.models import create_model, list_models  # noqa: E402
from miamind.mindspore.models._layers import DropPath  # noqa: E402
from miamind.models import create_model as create_torch_model  # noqa: E402
from miamind.models import list_models as list_torch_models  # noqa: E402

#: max |MindSpore - PyTorch| / max |PyTorch| allowed. Observed: <= 1.5e-6 (float32 summation order in
#: convs differs between the two backends and the difference grows with depth: ~5e-7 for ResNet-18 and
#: up to 1.4e-6 for ResNet-50 without attention, ~1e-7 for the small models).
RTOL = 1e-5

# Small configurations: (model, create_model kwargs, input shape).
SMALL = {
    "flowcnn": (dict(num_classes=3, in_chans=1, stages=(8, 16, 16)), (2, 1, 23)),
    "fastnet": (dict(num_classes=10, in_chans=3, widths=(16, 32, 32)), (2, 3, 32, 32)),
    "unet": (
        dict(num_classes=2, in_chans=1, width=8, attention_at=("encoder", "bottleneck", "decoder", "skip")),
        (1, 1, 32, 32),
    ),
    "resnet18": (dict(num_classes=10, in_chans=3), (1, 3, 32, 32)),
    "resnet50": (dict(num_classes=10, in_chans=3), (1, 3, 32, 32)),
}


def _randomise_bn(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(c, generator=gen) * 0.2 - 0.1)


def _pair(name: str, attention, seed: int = 0, **kwargs):
    """(PyTorch model, MindSpore cell holding its converted weights), both in eval mode."""
    torch.manual_seed(seed)
    model = create_torch_model(name, attention=attention, **kwargs).eval()
    _randomise_bn(model, seed)
    net = create_model(name, attention=attention, **kwargs)
    convert.load_into_cell(net, convert.torch_to_mindspore(model.state_dict()))
    net.set_train(False)
    return model, net


def _input(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _compare(model, net, x: np.ndarray):
    """(max abs difference, max abs PyTorch output); fails beyond RTOL of the output scale."""
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = net(ms.Tensor(x)).asnumpy()
    assert out.shape == ref.shape
    diff, scale = float(np.abs(out - ref).max()), float(np.abs(ref).max())
    # A vanishing output would make any tolerance meaningless.
    assert scale > 1e-4, f"output scale {scale} too small for a meaningful comparison"
    assert diff <= RTOL * scale, f"max |ms - torch| = {diff:.3g} > {RTOL} * {scale:.3g}"
    return diff, scale


# ------------------------------------------------------------------------------------------ registry


def test_list_models_mirrors_pytorch():
    # reference_resnet (the public MindSpore code's network) is the one PyTorch model without a twin.
    assert list_models() == sorted(set(list_torch_models()) - {"reference_resnet"})


def test_create_model_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown MindSpore model 'resnet99'.*fastnet"):
        create_model("resnet99", num_classes=10, in_chans=3)
    with pytest.raises(ValueError, match=r"fastnet: unknown keyword argument\(s\) \['depth'\].*widths"):
        create_model("fastnet", num_classes=10, in_chans=3, depth=3)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        create_model("flowcnn", num_classes=0, in_chans=1)
    with pytest.raises(ValueError, match="flowcnn: cannot build attention 'nope' at after each conv stage"):
        create_model("flowcnn", num_classes=2, in_chans=1, attention="nope")
    with pytest.raises(ValueError, match="unet: unknown attention_at"):
        create_model("unet", num_classes=2, in_chans=1, attention="mia", attention_at=("middle",))


# ------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("attention", ["mia", None])
@pytest.mark.parametrize("name", ["flowcnn", "fastnet", "unet"])
def test_parity_small_models(name, attention, ms_mode):
    kwargs, shape = SMALL[name]
    model, net = _pair(name, attention, **kwargs)
    diff, scale = _compare(model, net, _input(shape))
    print(f"{name} attention={attention} {ms_mode}: max|diff|={diff:.3g} scale={scale:.3g}")


@pytest.mark.parametrize(
    "name, attention, kwargs, shape",
    [
        ("unet", "mia", dict(num_classes=2, in_chans=1, width=8, upsample="bilinear"), (1, 1, 32, 32)),
        ("flowcnn", "mia", dict(num_classes=2, in_chans=1, stages=(8, 16)), (3, 1, 1)),  # F = 1: ceil pooling
        ("fastnet", "mia_code", dict(num_classes=10, in_chans=3, widths=(8, 16, 16)), (1, 3, 20, 24)),
        ("resnet18", None, SMALL["resnet18"][0], SMALL["resnet18"][1]),  # BasicBlock path
    ],
)
def test_parity_variants_pynative(name, attention, kwargs, shape):
    model, net = _pair(name, attention, **kwargs)
    diff, scale = _compare(model, net, _input(shape))
    print(f"{name} {attention} {kwargs} {shape}: max|diff|={diff:.3g} scale={scale:.3g}")


@pytest.fixture(scope="module")
def resnet50_mia():
    kwargs, _ = SMALL["resnet50"]
    return _pair("resnet50", "mia", **kwargs)


def test_parity_resnet50_pynative(resnet50_mia):
    model, net = resnet50_mia
    diff, scale = _compare(model, net, _input(SMALL["resnet50"][1]))
    print(f"resnet50 mia pynative: max|diff|={diff:.3g} scale={scale:.3g}")


def test_parity_detects_a_wrong_attention_weight():
    """The comparison is sensitive: one changed attention bias in the last layer breaks it."""
    kwargs, shape = SMALL["fastnet"]
    model, net = _pair("fastnet", "mia", **kwargs)
    param = dict(net.parameters_and_names())["groups.2.attn.spatial.bias"]
    param.set_data(param + 2.0)
    with pytest.raises(AssertionError, match="max \\|ms - torch\\|"):
        _compare(model, net, _input(shape))


@pytest.mark.parametrize(
    "name, mode", [("flowcnn", "pynative"), ("flowcnn", "graph"), ("fastnet", "pynative")]
)
def test_gradients_match_pytorch(name, mode):
    """d(sum(w * logits))/d(param) for every trainable parameter, eval mode (BN on its statistics)."""
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)  # autouse fixture restores
    kwargs, shape = SMALL[name]
    model, net = _pair(name, "mia", **kwargs)
    x = _input(shape)
    out = model(torch.from_numpy(x))
    w = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * torch.from_numpy(w)).sum().backward()
    names = convert.torch_to_mindspore_names(model.state_dict())
    expected = {names[k]: p.grad.numpy() for k, p in model.named_parameters() if p.requires_grad}
    params = net.trainable_params()
    w_ms = ms.Tensor(w)

    def loss(inputs):
        return (net(inputs) * w_ms).sum()

    _, grads = ms.value_and_grad(loss, None, params)(ms.Tensor(x))
    assert sorted(p.name for p in params) == sorted(expected)
    scale = max(float(np.abs(g).max()) for g in expected.values())
    for p, g in zip(params, grads, strict=True):
        ref = expected[p.name].reshape(p.shape)  # Conv1d: (O, I, k) -> (O, I, 1, k)
        # Floor at 1e-3 of the largest gradient: a bias gradient summed over many positions can
        # cancel to ~1e-4 of its terms, and float32 summation order then dominates its last digits.
        tol = RTOL * max(float(np.abs(ref).max()), 1e-3 * scale)
        assert float(np.abs(g.asnumpy() - ref).max()) <= tol, p.name


# ------------------------------------------------------------------------------------------ names


def _check_bijection(model, net):
    torch_keys = list(model.state_dict())
    names = convert.torch_to_mindspore_names(torch_keys)
    ms_params = dict(net.parameters_and_names())
    mapped = {k: v for k, v in names.items() if v is not None}
    # Only num_batches_tracked is dropped; the rest maps injectively onto exactly the cell's parameters.
    assert sorted(k for k, v in names.items() if v is None) == sorted(
        k for k in torch_keys if k.endswith(".num_batches_tracked")
    )
    assert len(set(mapped.values())) == len(mapped)
    assert set(mapped.values()) == set(ms_params)
    # ...with the same shapes, up to MindSpore's (O, I, 1, k) layout of 1-D conv weights.
    state = model.state_dict()
    for k, v in mapped.items():
        expected = tuple(state[k].shape)
        if len(expected) == 3:
            expected = expected[:2] + (1,) + expected[2:]
        assert tuple(ms_params[v].shape) == expected, k
    # Back: the cell's parameters give the PyTorch state dict's names and shapes again.
    back = convert.mindspore_to_torch(convert.params_of(net), model.state_dict())
    assert list(back) == torch_keys
    for k, v in model.state_dict().items():
        assert torch.equal(back[k], v), k
    # Trainable in one framework <=> trainable in the other (e.g. fastnet's frozen BN gamma).
    trainable_torch = {names[k] for k, p in model.named_parameters() if p.requires_grad}
    assert trainable_torch == {p.name for p in net.trainable_params()}
    return len(mapped)


@pytest.mark.parametrize("attention", ["mia", None])
@pytest.mark.parametrize("name", ["flowcnn", "fastnet", "unet", "resnet18"])
def test_parameter_names_are_a_bijection(name, attention):
    kwargs, _ = SMALL[name]
    model, net = _pair(name, attention, **kwargs)
    _check_bijection(model, net)


def test_parameter_names_are_a_bijection_resnet50(resnet50_mia):
    model, net = resnet50_mia
    # 53 BN x 4 + 53 convs (stem, 16 x 3, 4 shortcuts) + 16 attention x 6 + fc weight and bias
    assert _check_bijection(model, net) == 53 * 4 + 53 + 16 * 6 + 2
    assert sum(p.size for p in net.get_parameters()) == sum(
        v.numel() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    )


def test_default_sizes_build_with_pytorch_names():
    """The paper-size defaults (no weights loaded): same names and shapes as PyTorch's state dict."""
    for name, in_chans, classes in (("fastnet", 3, 10), ("flowcnn", 1, 2), ("unet", 1, 2)):
        model = create_torch_model(name, num_classes=classes, in_chans=in_chans, attention="mia")
        net = create_model(name, num_classes=classes, in_chans=in_chans, attention="mia")
        expected = {k: v.shape for k, v in convert.torch_to_mindspore(model.state_dict()).items()}
        assert {k: tuple(p.shape) for k, p in net.parameters_and_names()} == expected, name


# ------------------------------------------------------------------------------------------ loading


def test_load_fails_on_wrong_name_shape_or_attention():
    kwargs, _ = SMALL["fastnet"]
    model = create_torch_model("fastnet", attention="mia", **kwargs)
    params = convert.torch_to_mindspore(model.state_dict())
    net = create_model("fastnet", attention="mia", **kwargs)

    renamed = dict(params)
    renamed["groups.0.attn.fc9.weight"] = renamed.pop("groups.0.attn.fc1.weight")
    with pytest.raises(
        ValueError, match=r"missing \['groups.0.attn.fc1.weight'\].*unexpected \['groups.0.attn.fc9"
    ):
        convert.load_into_cell(net, renamed)

    other = create_torch_model("fastnet", attention="mia", **{**kwargs, "widths": (16, 32, 48)})
    with pytest.raises(ValueError, match=r"shape mismatch \[groups.2.conv1.weight: got \(48, 32, 3, 3\)"):
        convert.load_into_cell(net, convert.torch_to_mindspore(other.state_dict()))

    plain = create_model("fastnet", attention=None, **kwargs)
    with pytest.raises(ValueError, match=r"unexpected \['groups.0.attn.fc1.weight'"):
        convert.load_into_cell(plain, params)


# ------------------------------------------------------------------------------------------ inputs


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("flowcnn", (2, 23), r"flowcnn expects input \(N, 1, F\)"),
        ("fastnet", (1, 3, 8, 8), r"fastnet expects input \(N, 3, H, W\) with H, W >= 9"),
        ("unet", (1, 1, 24, 32), r"unet \(depth 4\) expects input .* divisible by 16, got \(1, 1, 24, 32\)"),
        ("resnet18", (1, 1, 32, 32), r"resnet18 expects input \(N, 3, H, W\), got \(1, 1, 32, 32\)"),
    ],
)
def test_bad_input_shape_raises_value_error(name, shape, message, ms_mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed GRAPH compile writes rank_0/om/analyze_fail.ir into the cwd
    kwargs, _ = SMALL[name]
    net = create_model(name, **kwargs)
    net.set_train(False)
    with pytest.raises(ValueError, match=message):
        net(ms.Tensor(_input(shape)))


# ------------------------------------------------------------------------------------------ training-time behaviour


def test_batch_norm_training_step_matches_pytorch():
    """Train mode: batch statistics, PyTorch-convention momentum (0.4 -> MindSpore 0.6), eps 1e-12."""
    kwargs, shape = SMALL["fastnet"]
    model, net = _pair("fastnet", None, **kwargs)
    model.train()
    net.set_train(True)
    x = _input(shape, seed=1)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = net(ms.Tensor(x)).asnumpy()
    assert np.abs(out - ref).max() <= RTOL * np.abs(ref).max()
    ms_params = convert.params_of(net)
    names = convert.torch_to_mindspore_names(model.state_dict())
    checked = 0
    for name, value in model.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            np.testing.assert_allclose(
                ms_params[names[name]], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name
            )
            checked += 1
    assert checked == 2 * 6


def test_native_initialisation_follows_pytorch():
    """Training from scratch in MindSpore starts where the PyTorch models start."""
    fast = create_model("fastnet", num_classes=10, in_chans=3, widths=(8, 16, 16))
    params = dict(fast.parameters_and_names())
    assert not params["groups.0.bn1.gamma"].requires_grad  # airbench: frozen gamma
    assert params["groups.0.bn1.beta"].requires_grad
    w = params["groups.1.conv1.weight"].asnumpy()  # 8 -> 16: the first 8 filters are identities
    dirac = np.zeros((8, 8, 3, 3), np.float32)
    dirac[np.arange(8), np.arange(8), 1, 1] = 1
    np.testing.assert_array_equal(w[:8], dirac)
    assert np.abs(w[8:]).max() > 0

    res = create_model("resnet18", num_classes=10, in_chans=3, attention="mia")
    params = dict(res.parameters_and_names())
    assert np.all(params["layer1.0.bn2.gamma"].asnumpy() == 0)  # zero_init_last
    assert np.all(params["layer1.0.bn1.gamma"].asnumpy() == 1)
    fan_out = 64 * 3 * 3
    std = params["layer2.0.conv2.weight"].asnumpy().std()  # kaiming-normal, fan-out
    assert std == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)
    assert params["conv1.weight"].asnumpy().std() == pytest.approx(np.sqrt(2 / fan_out), rel=0.1)
    res = create_model("resnet18", num_classes=10, in_chans=3, zero_init_last=False, drop_path_rate=0.2)
    assert np.all(dict(res.parameters_and_names())["layer1.0.bn2.gamma"].asnumpy() == 1)
    # timm's stochastic-depth schedule, block by block.
    ref = create_torch_model("resnet18", num_classes=10, in_chans=3, drop_path_rate=0.2)
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        for blk_ms, blk_torch in zip(getattr(res, stage), getattr(ref, stage), strict=True):
            p_ms = blk_ms.drop_path.p if blk_ms.drop_path is not None else 0.0
            p_torch = blk_torch.drop_path.drop_prob if blk_torch.drop_path is not None else 0.0
            assert p_ms == pytest.approx(p_torch)


def test_drop_path_drops_whole_samples_in_training_only():
    cell = DropPath(0.5)
    x = ms.Tensor(np.ones((64, 3, 2, 2), np.float32))
    cell.set_train(False)
    np.testing.assert_array_equal(cell(x).asnumpy(), x.asnumpy())
    cell.set_train(True)
    out = cell(x).asnumpy().reshape(64, -1)
    per_sample = np.unique(out, axis=1)
    assert per_sample.shape[1] == 1  # one value per sample
    assert set(np.unique(per_sample)) <= {0.0, 2.0} and len(np.unique(per_sample)) == 2


def test_layers_take_pytorch_conventions():
    """_layers builds MindSpore cells from PyTorch's arguments: explicit zero padding and bias, BN
    momentum in PyTorch's convention, a frozen gamma on request."""
    from miamind.mindspore.models import _layers

    x2, x1 = ms.Tensor(np.ones((1, 3, 5, 5), np.float32)), ms.Tensor(np.ones((1, 2, 7), np.float32))
    conv = _layers.conv2d(3, 4, 3, padding=1, bias=False)
    assert conv(x2).shape == (1, 4, 5, 5) and [p.name for p in conv.get_parameters()] == ["weight"]
    assert _layers.conv2d(3, 4, 2, stride=1, bias=True)(x2).shape == (1, 4, 4, 4)  # no padding
    conv1 = _layers.conv1d(2, 4, 3, padding=1, bias=True)
    assert conv1(x1).shape == (1, 4, 7) and [p.name for p in conv1.get_parameters()] == ["weight", "bias"]

    bn = _layers.batch_norm(3, momentum=0.4, eps=1e-12, train_gamma=False)
    assert not bn.gamma.requires_grad and bn.beta.requires_grad
    bn.set_train(True)
    batch = np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32)
    bn(ms.Tensor(batch))
    # PyTorch: running = (1 - momentum) * running + momentum * batch_mean, from running = 0.
    expected = 0.4 * batch.mean((0, 2, 3))
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), expected, rtol=1e-5, atol=1e-6)
    assert type(_layers.batch_norm(3, dims=1)).__name__ == "BatchNorm1d"
    with pytest.raises(ValueError, match="PyTorch convention"):
        _layers.batch_norm(3, momentum=1.5)
