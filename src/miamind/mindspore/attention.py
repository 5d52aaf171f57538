"""MIA-Mind attention as MindSpore cells, twins of the PyTorch layers in :mod:`miamind.attention.mia`.

Same names, constructors, parameter names and maths as the PyTorch classes, so weights move between
the two with :mod:`miamind.mindspore.convert` and the outputs agree to float32 rounding (the tests
check 1e-5 in PYNATIVE and GRAPH mode, gradients included). Registry names and fusions are those of
``docs/attention.md`` (``mia``: :class:`MIAMind`, ``mia_add``, ``mia_seq``, ``mia_code``,
``mia_adaptive``); each class docstring gives its fusion. Constructor::

    cls(channels, *, rd_ratio=1/16, rd_channels=None, kernel_size=7, dims=2, fused=True,
        act_layer="relu", gate_layer="sigmoid", gate_init="paper", dtype=None)

``act_layer`` / ``gate_layer`` take only ReLU / sigmoid here (the paper's; the PyTorch layers take any
timm activation); ``gate_init="identity"`` sets the same biases as in PyTorch.

Parameters (``cell.parameters_and_names()``): ``fc1.weight``, ``fc1.bias``, ``fc2.weight``,
``fc2.bias``, ``spatial.weight``, ``spatial.bias`` (``mia_code``: no ``spatial.bias``;
``mia_adaptive``: plus ``theta``). MindSpore names a parameter by its attribute path, exactly like
PyTorch, so the names are the same; only 1-D convolution weights differ in layout (MindSpore's
``nn.Conv1d`` stores ``(out, in, 1, k)``, PyTorch ``(out, in, k)``), which ``convert`` handles.

Fresh cells are initialised like the PyTorch layers: MindSpore 2.10's convolutions default to
HeUniform(sqrt(5)) weights and Uniform(1/sqrt(fan_in)) biases, PyTorch's ``reset_parameters``.

``dtype`` is a MindSpore dtype (``mindspore.float32`` when ``None``). There is no ``device``
argument: MindSpore places cells with ``mindspore.set_device`` / the context, not per layer.
``fused`` is accepted so the same ``attention_kwargs`` work for both backends, and does nothing here:
the PyTorch flag picks a memory-saving autograd path; MindSpore's autodiff decides what to keep itself.
Wrong inputs raise ``ValueError`` naming the expected and received shapes, as in PyTorch; the check
uses static shapes, so it also runs (once, at compile time) in GRAPH mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._require import require_mindspore

ms = require_mindspore()
from mindspore import nn, ops  # noqa: E402  (after the friendly ImportError above)

# Validation, sizes and the variants' facts are shared with the PyTorch layers so the two can never
# drift (a pure-Python module: importing it imports no torch).
from .._arch.mia import (  # noqa: E402
    ADAPTIVE_THETA_INIT,
    MIA_CLASS_NAMES,
    MIA_VARIANTS,
    MIAVariant,
    expected_input_shape,
    resolve_mia_args,
)
from .._registry import AttentionSpec, Registry, resolve_spec  # noqa: E402

__all__ = [*MIA_CLASS_NAMES, "create_attention", "get_attention", "list_attention"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class _MIABase(nn.Cell):
    """Shared pieces: channel MLP (``fc1``, ``fc2``: 1x1 convs), spatial conv (``spatial``), gates.

    Mirrors :class:`miamind.attention.mia._MIABase`; subclasses implement :meth:`forward_gated`. The
    constructor takes the PyTorch layers' arguments (``device`` aside) and checks them with
    :func:`miamind._arch.mia.resolve_mia_args`, as they do.
    """

    #: spatial conv input channels and bias, ``gate_init="identity"`` logit (as the PyTorch layers).
    variant: MIAVariant = MIA_VARIANTS["mia"]

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        kernel_size: int = 7,
        dims: int = 2,
        fused: bool = True,
        act_layer: Any = "relu",
        gate_layer: Any = "sigmoid",
        gate_init: str = "paper",
        dtype: Any = None,
    ) -> None:
        super().__init__()
        del fused  # PyTorch's memory-saving autograd path; MindSpore's autodiff decides what to keep
        name = type(self).__name__
        args = resolve_mia_args(
            name,
            self.variant,
            channels,
            rd_ratio=rd_ratio,
            rd_channels=rd_channels,
            kernel_size=kernel_size,
            dims=dims,
            gate_init=gate_init,
        )
        for arg, value, only in (("act_layer", act_layer, "relu"), ("gate_layer", gate_layer, "sigmoid")):
            if value != only:
                raise ValueError(f"{name}: the MindSpore backend supports {arg}={only!r} only, got {value!r}")
        self.dims, self.channels = args.dims, args.channels
        self.kernel_size, self.hidden_channels = args.kernel_size, args.hidden_channels
        conv = _CONV[self.dims]
        factory = dict(dtype=ms.float32 if dtype is None else dtype)
        self.fc1 = conv(self.channels, self.hidden_channels, 1, pad_mode="valid", has_bias=True, **factory)
        self.fc2 = conv(self.hidden_channels, self.channels, 1, pad_mode="valid", has_bias=True, **factory)
        # pad_mode="pad", padding=k//2: PyTorch's symmetric zero padding, stated explicitly instead
        # of relying on how MindSpore's default pad_mode="same" splits the padding.
        k, v = self.kernel_size, self.variant
        self.spatial = conv(
            v.spatial_in_chs, 1, k, pad_mode="pad", padding=k // 2, has_bias=v.spatial_bias, **factory
        )
        self._spatial_axes = tuple(range(2, 2 + self.dims))
        self._layer_name = name
        if gate_init == "identity":  # resolve_mia_args refused it for a variant without spatial bias
            for bias in (self.fc2.bias, self.spatial.bias):
                bias.set_data(ops.full(bias.shape, self.variant.identity_gate_logit, dtype=bias.dtype))
        # Built here because GRAPH mode compiles construct() and only accepts a plain f-string there.
        self._expected_shape = expected_input_shape(self.channels, self.dims)

    def extend_repr(self) -> str:
        return (
            f"channels={self.channels}, hidden={self.hidden_channels}, "
            f"kernel_size={self.kernel_size}, dims={self.dims}"
        )

    def _mlp(self, z):
        return self.fc2(ops.relu(self.fc1(z)))

    def channel_gate(self, x):
        """w_c = sigmoid(MLP(mean over space)), shape (N, C, 1, ...)."""
        return ops.sigmoid(self._mlp(ops.mean(x, self._spatial_axes, keep_dims=True)))

    def spatial_gate(self, x):
        """w_s = sigmoid(conv(mean over channels)), shape (N, 1, *spatial)."""
        return ops.sigmoid(self.spatial(ops.mean(x, 1, keep_dims=True)))

    def construct(self, x):
        # Static shapes: in GRAPH mode this branch is resolved (and raises) at compile time.
        if x.ndim != self.dims + 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"{self._layer_name} expects input of shape {self._expected_shape}, got {x.shape}"
            )
        return self.forward_gated(x)

    def forward_gated(self, x):  # pragma: no cover - abstract
        raise NotImplementedError


class MIAMind(_MIABase):
    """MIA-Mind, paper form: ``out = X * (w_c * w_s)``. Arguments as :class:`miamind.attention.MIAMind`,
    except ``dtype`` (a MindSpore dtype, default float32), no ``device``, and ``fused``, which does nothing.
    """

    def forward_gated(self, x):
        return x * (self.channel_gate(x) * self.spatial_gate(x))


class MIAMindAdd(_MIABase):
    """Additive fusion ablation: ``out = X * (w_c + w_s)``. Same constructor as :class:`MIAMind`."""

    variant = MIA_VARIANTS["mia_add"]

    def forward_gated(self, x):
        return x * (self.channel_gate(x) + self.spatial_gate(x))


class MIAMindSeq(_MIABase):
    """Sequential gating: ``X1 = X * w_c(X)``, ``out = X1 * w_s(X1)``. Same constructor as :class:`MIAMind`."""

    variant = MIA_VARIANTS["mia_seq"]

    def forward_gated(self, x):
        x1 = x * self.channel_gate(x)
        return x1 * self.spatial_gate(x1)


class MIAMindCode(_MIABase):
    """The block of the public MindSpore code (see :class:`miamind.attention.MIAMindCode`)::

        w_c = sigmoid(MLP(mean_space(X)) + MLP(max_space(X)))
        X1  = X * w_c
        w_s = sigmoid(conv_k([mean_ch(X1), max_ch(X1)]))      2 -> 1 channels, no bias
        out = X1 * w_s

    Parameters: ``fc1.*``, ``fc2.*``, ``spatial.weight`` (no ``spatial.bias``).
    """

    variant = MIA_VARIANTS["mia_code"]

    def channel_gate(self, x):
        avg = ops.mean(x, self._spatial_axes, keep_dims=True)
        mx = ops.amax(x, self._spatial_axes, keepdims=True)
        return ops.sigmoid(self._mlp(avg) + self._mlp(mx))

    def spatial_gate(self, x):
        desc = ops.cat((ops.mean(x, 1, keep_dims=True), ops.amax(x, 1, keepdims=True)), 1)
        return ops.sigmoid(self.spatial(desc))

    def forward_gated(self, x):
        x1 = x * self.channel_gate(x)
        return x1 * self.spatial_gate(x1)


class MIAMindAdaptive(_MIABase):
    """Learned fusion ``A = g * (w_c * w_s) + (1 - g) * (w_c + w_s) / 2``, ``g = sigmoid(theta)``.

    See :class:`miamind.attention.MIAMindAdaptive`; ``theta`` is a scalar parameter initialised to 4.
    """

    variant = MIA_VARIANTS["mia_adaptive"]
    theta_init: float = ADAPTIVE_THETA_INIT

    def __init__(self, channels: int, **kwargs: Any) -> None:
        super().__init__(channels, **kwargs)
        self.theta = ms.Parameter(ms.Tensor(self.theta_init, dtype=self.fc1.weight.dtype), name="theta")

    def forward_gated(self, x):
        w_c, w_s = self.channel_gate(x), self.spatial_gate(x)
        g = ops.sigmoid(self.theta)
        return x * (g * (w_c * w_s) + (1 - g) * (w_c + w_s) * 0.5)


_REGISTRY = Registry("MindSpore attention", also_valid=("none",))
for _cls in (MIAMind, MIAMindAdd, MIAMindSeq, MIAMindCode, MIAMindAdaptive):
    _REGISTRY.register(_cls.variant.name)(_cls)


def list_attention() -> list[str]:
    """Names ``create_attention`` accepts, sorted ("none" is always accepted and not listed)."""
    return _REGISTRY.names()


def get_attention(spec: AttentionSpec) -> Callable[..., Any] | None:
    """Resolve a name / class / callable to a constructor; ``None``, ``""`` and ``"none"`` give ``None``."""
    return resolve_spec(_REGISTRY, spec)


def create_attention(spec: AttentionSpec, channels: int, **kwargs: Any) -> nn.Cell:
    """Build an attention cell for ``channels`` channels; ``None``/``"none"`` gives ``nn.Identity()``.

    Mirrors :func:`miamind.attention.create_attention` (same names and keyword arguments, except
    ``device``, which MindSpore does not take per layer).
    """
    ctor = get_attention(spec)
    if ctor is None:
        return nn.Identity()
    return ctor(channels, **kwargs)
