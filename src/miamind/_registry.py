"""Name -> constructor tables and the checks every ``create_*`` call shares, for both backends.

The attention and model registries of the PyTorch package and of the MindSpore package are four
instances of :class:`Registry` (the model ones :class:`ModelRegistry`, which also checks and makes
the ``create_model`` call); :meth:`ModelRegistry.create` and :func:`build_in_slot` hold what the two
``create_model`` / ``build_attention`` pairs validate, so both report bad input in the same words.
Pure Python: importing it imports neither torch nor MindSpore.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from .errors import InputError

#: What every ``attention=`` argument takes, in both backends: a registered name, a class or callable
#: building the layer (``callable(channels, **kwargs)``), or ``None`` / ``"none"`` (no attention).
AttentionSpec = None | str | Callable[..., Any] | type

__all__ = [
    "AttentionSpec",
    "BUILDER_DEFAULT",
    "COMMON_MODEL_KWARGS",
    "ModelRegistry",
    "Registry",
    "attention_name",
    "build_in_slot",
    "resolve_spec",
]

M = TypeVar("M")

#: Arguments every model builder takes; the rest of its keyword arguments are model-specific.
COMMON_MODEL_KWARGS = ("num_classes", "in_chans", "attention", "attention_kwargs")


class Registry:
    """A case-insensitive table of constructors, filled by the ``register`` decorator.

    Args:
        what: what it holds, for error messages (``"attention"``, ``"MindSpore model"``, ...).
        required_kwargs: keyword arguments every registered callable must accept (checked at
            registration, so a builder that cannot be called the common way fails on import).
        also_valid: names accepted besides the registered ones, listed first in error messages
            (``"none"`` for attentions).
    """

    def __init__(self, what: str, required_kwargs: Sequence[str] = (), also_valid: Sequence[str] = ()):
        self.what = what
        self.required_kwargs = tuple(required_kwargs)
        self.also_valid = tuple(also_valid)
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@registry.register("se")`` adds the class or function under ``"se"``."""
        key = name.lower()

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.what} name {key!r} is already registered to {self._items[key]!r}")
            missing = [a for a in self.required_kwargs if a not in inspect.signature(obj).parameters]
            if missing:
                raise TypeError(f"{self.what} builder {obj.__name__} must accept keyword arguments {missing}")
            self._items[key] = obj
            return obj

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` if registered (for tests and plugins that register temporarily)."""
        self._items.pop(name.lower(), None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def names(self) -> list[str]:
        """Registered names, sorted (``also_valid`` names are not listed)."""
        return sorted(self._items)

    def get(self, name: str) -> Callable[..., Any]:
        """The constructor registered as ``name``; a ValueError listing the valid names otherwise."""
        key = name.lower() if isinstance(name, str) else name
        if key not in self._items:
            valid = [*self.also_valid, *self.names()]
            raise InputError(f"unknown {self.what} {name!r}; valid names: {', '.join(valid)}")
        return self._items[key]


class _BuilderDefault:
    """Sentinel: ``attention`` not given to ``create_model``, use the builder's own default."""

    def __repr__(self) -> str:
        return "<model default>"


#: ``create_model(..., attention=BUILDER_DEFAULT)`` (the default): the builder's own default attention.
BUILDER_DEFAULT: Any = _BuilderDefault()


class ModelRegistry(Registry, Generic[M]):
    """A :class:`Registry` of model builders ``fn(*, num_classes, in_chans, attention, attention_kwargs,
    **model_kwargs)`` returning an ``M`` (``torch.nn.Module``, ``mindspore.nn.Cell``); its
    :meth:`create` is the backend's ``create_model``."""

    def __init__(self, what: str) -> None:
        super().__init__(what, required_kwargs=COMMON_MODEL_KWARGS)

    def create(
        self,
        name: str,
        *,
        num_classes: int,
        in_chans: int = 3,
        attention: Any = BUILDER_DEFAULT,
        attention_kwargs: Mapping[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> M:
        """Build model ``name`` with ``attention`` inserted at the model's documented points.

        Args:
            name: one of ``list_models()`` (case-insensitive).
            num_classes: output classes (>= 1): logits ``(N, num_classes)``, or ``(N, num_classes, H,
                W)`` for ``unet``.
            in_chans: input channels (>= 1); default 3 (RGB), as timm's ``create_model``.
            attention: a name from the backend's ``list_attention()``, a class or callable
                ``fn(channels, *, dims, **attention_kwargs)``, or ``None`` / ``"none"`` for no attention
                (``nn.Identity``, no parameters). Omitted: the model's default, which is no attention
                for every model except the PyTorch ``reference_resnet`` (``"mia_code"``, as the public
                MindSpore code).
            attention_kwargs: keyword arguments for every attention layer (e.g. ``{"rd_ratio": 1/8}``).
            **model_kwargs: model-specific options (see each builder's docstring; the same in both
                backends).

        Raises:
            ValueError: unknown model name, ``num_classes`` / ``in_chans`` not an integer >= 1, an unknown
                model keyword argument (the message lists the accepted ones), or an attention that
                cannot be built in that model (the message names the model and the insertion point).
        """
        builder = self.get(name)
        key = name.lower()
        num_classes = _check_count(num_classes, "num_classes", key)
        in_chans = _check_count(in_chans, "in_chans", key)
        if attention_kwargs is not None and not isinstance(attention_kwargs, Mapping):
            raise InputError(
                f"{key}: attention_kwargs must be a mapping or None, got {type(attention_kwargs).__name__}"
            )
        params = inspect.signature(builder).parameters
        # model keyword arguments the builder does not take (unless it takes **kwargs)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(model_kwargs) - set(params))
            if unknown:
                valid = sorted(set(params) - set(COMMON_MODEL_KWARGS))
                raise InputError(f"{key}: unknown keyword argument(s) {unknown}; accepted: {valid}")
        chosen = {} if attention is BUILDER_DEFAULT else {"attention": attention}
        return builder(
            num_classes=num_classes,
            in_chans=in_chans,
            attention_kwargs=attention_kwargs,
            **chosen,
            **model_kwargs,
        )


def resolve_spec(registry: Registry, spec: Any) -> Callable[..., Any] | None:
    """An attention spec -> its constructor: a name from ``registry``, a class or callable as it is;
    ``None``, ``""`` and ``"none"`` give ``None`` (no attention)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return None if spec.lower() in ("none", "") else registry.get(spec)
    if callable(spec):
        return spec
    raise TypeError(f"attention must be None, a name, a class or a callable, got {type(spec).__name__}")


def attention_name(spec: Any) -> str:
    """A printable name for an attention spec (name, class, callable or ``functools.partial``)."""
    if spec is None:
        return "none"
    if isinstance(spec, str):
        return spec
    return (
        getattr(spec, "__name__", None)
        or getattr(getattr(spec, "func", None), "__name__", None)
        or repr(spec)
    )


def _check_count(value: Any, what: str, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{model}: {what} must be an integer >= 1, got {value!r}")
    return value


def build_in_slot(
    create: Callable[..., Any],
    spec: Any,
    channels: int,
    *,
    model: str,
    slot: str,
    dims: int,
    attention_kwargs: Mapping[str, Any] | None,
    **extra: Any,
) -> Any:
    """``create(spec, channels, dims=dims, **attention_kwargs, **extra)``, with any failure turned into
    one ValueError naming the model, the slot, the channels and ``dims``."""
    kwargs = dict(attention_kwargs or {})
    if "dims" in kwargs:
        raise InputError(f"{model}: attention_kwargs must not set 'dims' (the model sets dims={dims})")
    try:
        return create(spec, channels, dims=dims, **kwargs, **extra)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"{model}: cannot build attention {attention_name(spec)!r} at {slot} "
            f"({channels} channels, dims={dims}): {err}"
        ) from err
