"""What every model plan shares: the common constructor arguments and the attention slots.

A model's plan is a frozen dataclass (a :class:`ModelSpec`) holding its constructor's keyword
arguments with their defaults, checked in ``__post_init__``; both backends' model classes take those
arguments (:func:`takes_spec` gives them the dataclass's signature) and build their layers from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["AttentionSite", "ModelSpec", "spec_signature", "takes_spec"]

T = TypeVar("T")


@dataclass(frozen=True)
class AttentionSite:
    """One attention layer of a model: what to build, on how many channels, at which slot.

    ``spec`` is ``None`` where the model leaves a slot empty (``nn.Identity``, e.g. a U-Net point not
    in ``attention_at``), so every slot exists in both backends with the same name.
    """

    spec: Any
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
    attention: Any = None
    attention_kwargs: Mapping[str, Any] | None = None

    def site(
        self, model: str, slot: str, channels: int, *, dims: int = 2, attend: bool = True
    ) -> AttentionSite:
        """The slot ``slot`` of ``model`` on ``channels`` channels; empty unless ``attend``."""
        spec = self.attention if attend else None
        return AttentionSite(spec, channels, model, slot, dims, self.attention_kwargs)


def spec_signature(
    spec: type, positional: Sequence[str] = (), exclude: Sequence[str] = ()
) -> inspect.Signature:
    """The signature ``(*positional, *, <spec's fields but exclude, with their defaults>)``."""
    lead = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in positional]
    fields = [p for p in inspect.signature(spec).parameters.values() if p.name not in exclude]
    return inspect.Signature([*lead, *fields])


def takes_spec(spec: type, *positional: str) -> Callable[[type[T]], type[T]]:
    """Class decorator for a model whose constructor is ``__init__(self, *positional, **kwargs)`` with
    ``kwargs`` the fields of the dataclass ``spec``: ``inspect.signature(cls)`` (``help()``, and
    ``create_model``'s check for unknown arguments) then shows ``spec``'s keyword-only arguments and
    defaults, the one place they are written.

    The signature is set on ``__init__``, not on the class: on the class, ``inspect.signature`` of an
    *instance* (a module's call, which torch.export and Lightning inspect) would return it too.
    """

    def decorate(cls: type[T]) -> type[T]:
        if "__init__" not in vars(cls):  # else the parent's constructor would get the signature
            raise TypeError(f"takes_spec: {cls.__name__} must define __init__")
        sig = spec_signature(spec, ("self", *positional))
        cls.__init__.__signature__ = sig  # type: ignore[attr-defined]
        return cls

    return decorate
