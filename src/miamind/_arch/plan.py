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

__all__ = ["AttentionSite", "AttentionSpec", "ModelSpec", "spec_signature", "takes_spec"]

T = TypeVar("T")

#: What ``attention=`` takes: a registered name, a class or callable building the layer, or ``None``.
AttentionSpec = None | str | Callable[..., Any]


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


def spec_signature(
    spec: type, leading: Sequence[inspect.Parameter] = (), exclude: Sequence[str] = (), returns: Any = None
) -> inspect.Signature:
    """The signature ``(*leading, *, <spec's fields but exclude, with their defaults>) -> returns``."""
    fields = [p for p in inspect.signature(spec).parameters.values() if p.name not in exclude]
    return inspect.Signature([*leading, *fields], return_annotation=returns)


def takes_spec(spec: type) -> Callable[[type[T]], type[T]]:
    """Class decorator for a model whose constructor is ``__init__(self, [positional, ...] **kwargs)``
    with ``kwargs`` the fields of the dataclass ``spec``: ``inspect.signature(cls)`` (``help()``, and
    ``create_model``'s check for unknown arguments) then shows ``spec``'s keyword-only arguments and
    defaults, the one place they are written, after the constructor's own positional parameters.

    The signature is set on ``__init__``, not on the class: on the class, ``inspect.signature`` of an
    *instance* (a module's call, which torch.export and Lightning inspect) would return it too.
    """

    def decorate(cls: type[T]) -> type[T]:
        if "__init__" not in vars(cls):  # else the parent's constructor would get the signature
            raise TypeError(f"takes_spec: {cls.__name__} must define __init__")
        own = inspect.signature(cls.__init__)
        leading = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        sig = spec_signature(spec, leading, returns=own.return_annotation)
        cls.__init__.__signature__ = sig  # type: ignore[attr-defined]
        return cls

    return decorate
