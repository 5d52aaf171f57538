"""Name -> constructor tables and the checks every ``create_*`` call shares, for both backends.

The attention and model registries of the PyTorch package and of the MindSpore package are four
instances of :class:`Registry`; :func:`check_model_call` and :func:`build_in_slot` hold what the two
``create_model`` / ``build_attention`` pairs validate, so both report bad input in the same words.
Pure Python: importing it imports neither torch nor MindSpore.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Registry", "attention_name", "build_in_slot", "check_model_call", "resolve_spec"]


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
            raise ValueError(f"unknown {self.what} {name!r}; valid names: {', '.join(valid)}")
        return self._items[key]


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
        raise ValueError(f"{model}: {what} must be an integer >= 1, got {value!r}")
    return value


def check_model_call(
    builder: Callable[..., Any],
    name: str,
    *,
    num_classes: Any,
    in_chans: Any,
    attention_kwargs: Any,
    model_kwargs: Mapping[str, Any],
    common: Sequence[str],
) -> tuple[int, int]:
    """What every ``create_model`` checks before calling ``builder``: counts, ``attention_kwargs``,
    and model keyword arguments the builder does not take (unless it takes ``**kwargs``).
    Returns ``(num_classes, in_chans)``."""
    key = name.lower()
    num_classes = _check_count(num_classes, "num_classes", key)
    in_chans = _check_count(in_chans, "in_chans", key)
    if attention_kwargs is not None and not isinstance(attention_kwargs, Mapping):
        raise ValueError(
            f"{key}: attention_kwargs must be a mapping or None, got {type(attention_kwargs).__name__}"
        )
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(model_kwargs) - set(params))
        if unknown:
            valid = sorted(set(params) - set(common))
            raise ValueError(f"{key}: unknown keyword argument(s) {unknown}; accepted: {valid}")
    return num_classes, in_chans


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
        raise ValueError(f"{model}: attention_kwargs must not set 'dims' (the model sets dims={dims})")
    try:
        return create(spec, channels, dims=dims, **kwargs, **extra)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{model}: cannot build attention {attention_name(spec)!r} at {slot} "
            f"({channels} channels, dims={dims}): {err}"
        ) from err
