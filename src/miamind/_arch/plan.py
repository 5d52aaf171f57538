"""What every model plan shares: the common constructor arguments and the attention slots.

A model's plan is a frozen dataclass (a :class:`ModelSpec`) holding its constructor's keyword
arguments with their defaults, checked in ``__post_init__``; both backends' model classes take those
arguments (:func:`takes_spec` gives them the dataclass's signature). The plan also builds the layers,
in construction order, through a backend's :class:`LayerOps` (``build_layers(ops, ...)``), and names
the values the forward pass reads (:meth:`ModelSpec.attributes`), so a backend's class only attaches
them (:meth:`ModelSpec.build_into`) and defines its forward pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .._registry import AttentionSpec

__all__ = [
    "AttentionSite",
    "AttentionSpec",
    "LayerOps",
    "ModelSpec",
    "NamedLayers",
    "attach",
    "spec_signature",
    "takes_spec",
]

T = TypeVar("T")


#: Layers in construction order, each with the attribute name it gets (its parameters' name prefix).
NamedLayers = list[tuple[str, Any]]


class LayerOps(Protocol):
    """The layers a backend builds for the plans, taking PyTorch's conventions (explicit ``bias``,
    zero ``padding``, BN ``momentum``); each backend implements it as a module
    (:mod:`miamind.models._ops`, :mod:`miamind.mindspore.models._layers`).

    PyTorch initialises parameters from the global RNG as each layer is built, so a plan calls these
    in the order the layers are created: that order is part of what a seed reproduces.
    """

    def conv1d(self, in_chs: int, out_chs: int, kernel_size: int, *, padding: int = 0, bias: bool) -> Any: ...

    def conv2d(
        self, in_chs: int, out_chs: int, kernel_size: int, *, stride: int = 1, padding: int = 0, bias: bool
    ) -> Any: ...

    def batch_norm(
        self,
        channels: int,
        *,
        dims: int = 2,
        momentum: float = 0.1,
        eps: float = 1e-5,
        train_gamma: bool = True,
    ) -> Any: ...

    def relu(self) -> Any: ...

    def gelu(self) -> Any: ...

    def max_pool(self, kernel_size: int, *, dims: int = 2, ceil_mode: bool = False) -> Any: ...

    def dropout(self, p: float) -> Any: ...

    def dense(self, in_features: int, out_features: int, *, bias: bool) -> Any: ...

    def sequential(self, layers: NamedLayers) -> Any: ...

    def layer_list(self, layers: Sequence[Any]) -> Any: ...

    @property
    def build_attention(self) -> Callable[..., Any]:
        """The backend's ``build_attention``, called by :meth:`AttentionSite.build`."""
        ...


@dataclass(frozen=True)
class AttentionSite:
    """One attention layer of a model: what to build, on how many channels, at which slot.

    ``spec`` is ``None`` where the model leaves a slot empty (``nn.Identity``, e.g. a U-Net point not
    in ``attention_at``), so every slot exists in both backends with the same name.
    """

    spec: AttentionSpec
    channels: int
    model: str
    slot: str
    dims: int
    attention_kwargs: Mapping[str, Any] | None

    def build(self, build_attention: Callable[..., T]) -> T:
        """``build_attention(spec, channels, model=..., slot=..., dims=..., attention_kwargs=...)``: the
        backend's function (it creates the layer and names the slot in any error)."""
        return build_attention(
            self.spec,
            self.channels,
            model=self.model,
            slot=self.slot,
            dims=self.dims,
            attention_kwargs=self.attention_kwargs,
        )


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The arguments every model takes (``create_model`` checks the counts before building).

    Args:
        num_classes: logits per sample (per pixel for ``unet``).
        in_chans: input channels.
        attention: attention spec (name, class, callable or ``None`` for none).
        attention_kwargs: keyword arguments for every attention layer.
    """

    num_classes: int
    in_chans: int
    attention: AttentionSpec = None
    attention_kwargs: Mapping[str, Any] | None = None

    def site(
        self, model: str, slot: str, channels: int, *, dims: int = 2, attend: bool = True
    ) -> AttentionSite:
        """The slot ``slot`` of ``model`` on ``channels`` channels; empty unless ``attend``."""
        spec = self.attention if attend else None
        return AttentionSite(spec, channels, model, slot, dims, self.attention_kwargs)

    def attributes(self) -> dict[str, Any]:
        """Plain values the model's forward pass reads (input checks, scales), set by :meth:`build_into`."""
        return {"in_chans": self.in_chans}

    def build_into(self, model: object, layers: NamedLayers) -> None:
        """Set :meth:`attributes` and ``layers`` (from the plan's ``build_layers``) on ``model`` under
        their names (:func:`attach`)."""
        attach(model, [*self.attributes().items(), *layers])


def attach(model: object, values: NamedLayers) -> None:
    """Set each ``(name, value)`` of ``values`` on ``model``, in order; both frameworks register a layer
    set as an attribute (``nn.Module`` / ``nn.Cell.__setattr__``)."""
    for name, value in values:
        setattr(model, name, value)


def spec_signature(
    spec: type,
    leading: Sequence[inspect.Parameter] = (),
    exclude: Sequence[str] = (),
    returns: Any = None,
    *,
    trailing: Sequence[inspect.Parameter] = (),
    annotations: Mapping[str, Any] | None = None,
) -> inspect.Signature:
    """The signature ``(*leading, *, <spec's fields but exclude, with their defaults>, *trailing) ->
    returns``; ``annotations`` replaces the annotations of the fields it names."""
    annotations = annotations or {}
    fields = [
        p.replace(annotation=annotations.get(p.name, p.annotation))
        for p in inspect.signature(spec).parameters.values()
        if p.name not in exclude
    ]
    return inspect.Signature([*leading, *fields, *trailing], return_annotation=returns)


def takes_spec(spec: type, annotations: Mapping[str, Any] | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator for a model (or layer) whose constructor is ``__init__(self, [positional, ...]
    *, [keyword-only, ...] **kwargs)`` with ``kwargs`` the fields of the dataclass ``spec``:
    ``inspect.signature(cls)`` (``help()``, and ``create_model``'s check for unknown arguments) then
    shows ``spec``'s keyword-only arguments and defaults, the one place they are written, after the
    constructor's own positional parameters and before its own keyword-only ones (a backend's
    ``device`` / ``dtype``). ``annotations`` gives a field the backend's own annotation (e.g. the
    PyTorch type of a layer argument the pure-Python spec can only call ``Any``).

    The signature is set on ``__init__``, not on the class: on the class, ``inspect.signature`` of an
    *instance* (a module's call, which torch.export and Lightning inspect) would return it too.
    """

    def decorate(cls: type[T]) -> type[T]:
        if "__init__" not in vars(cls):  # else the parent's constructor would get the signature
            raise TypeError(f"takes_spec: {cls.__name__} must define __init__")
        own = inspect.signature(cls.__init__)
        kinds = inspect.Parameter
        leading = [
            p for p in own.parameters.values() if p.kind not in (kinds.KEYWORD_ONLY, kinds.VAR_KEYWORD)
        ]
        trailing = [p for p in own.parameters.values() if p.kind is kinds.KEYWORD_ONLY]
        sig = spec_signature(
            spec, leading, returns=own.return_annotation, trailing=trailing, annotations=annotations
        )
        cls.__init__.__signature__ = sig  # type: ignore[attr-defined]
        return cls

    return decorate
