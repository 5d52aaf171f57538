"""Unpickle the official CIFAR-10 python batches without ever running foreign code.

``pickle.load`` calls whatever callable a file names, so a crafted "data_batch_1" could run
``os.system`` on load. The official batches are Python-2 protocol-2 pickles of a dict of byte
strings, lists of ints and one NumPy array; the only globals they name are (``pickletools.dis``
of a batch made the way the official ones were, see tests/data/test_safe_pickle.py)::

    numpy.core.multiarray._reconstruct  # ndarray.__reduce__
    numpy.ndarray  # argument of _reconstruct
    numpy.dtype  # the array's dtype

(``batches.meta`` names no global at all.) NumPy 2 writes ``numpy._core.multiarray._reconstruct``
instead, so that spelling is admitted too. :class:`SafeUnpickler` resolves exactly these names
from a fixed table, never imports a module by name, and rejects everything else with a
:class:`~miamind.data.errors.DataError` naming the file and the forbidden global.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import DataError

try:  # NumPy >= 1.26 (and 2.x) expose the private core under numpy._core.
    from numpy._core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older NumPy
    from numpy.core.multiarray import _reconstruct as _np_reconstruct  # type: ignore[attr-defined]


def _plain_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` as the pickle calls it, refusing object dtypes.

    An object array would unpickle arbitrary Python objects as its elements; the batches hold
    only uint8 pixels, so no dtype that can carry objects is needed.
    """
    dt = np.dtype(spec, align, copy)
    if dt.hasobject:
        raise pickle.UnpicklingError(f"object dtype {dt!r} is not allowed")
    return dt


GlobalTable = Mapping[tuple[str, str], Callable[..., Any]]

#: (module, name) -> the object it resolves to: everything the official CIFAR-10 batches need.
CIFAR_BATCH_GLOBALS: GlobalTable = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
}


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside the allowed table."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        super().__init__(f"{module}.{name}")


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` answers only from ``allowed_globals``.

    Every opcode that reaches a callable (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT*) goes through
    ``find_class``, so a payload like ``os.system`` fails before anything is called.
    """

    def __init__(
        self, file: IO[bytes], allowed_globals: GlobalTable = CIFAR_BATCH_GLOBALS, *, encoding: str = "bytes"
    ):
        super().__init__(file, encoding=encoding)
        self._allowed = dict(allowed_globals)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"persistent id {pid!r} is not allowed")


def _allowed_names(table: GlobalTable) -> str:
    return ", ".join(sorted(f"{m}.{n}" for m, n in table))


def safe_load(
    source: str | Path | bytes | IO[bytes],
    allowed_globals: GlobalTable = CIFAR_BATCH_GLOBALS,
    *,
    name: str | None = None,
    encoding: str = "bytes",
) -> Any:
    """Unpickle ``source`` (a path, the file's bytes, or a binary file object) safely.

    ``encoding="bytes"`` because the batches were pickled by Python 2: their ``str`` keys come
    back as ``bytes`` (``b'data'``, ``b'labels'``), exactly as the CIFAR-10 page documents.
    ``name`` is what error messages call the file (default: the path or the file's ``name``).

    Raises :class:`DataError` (naming the file) for an empty or truncated file, a forbidden
    global, or any other malformed content.
    """
    if isinstance(source, (str, Path)):
        label = name or str(source)
        try:
            raw = Path(source).read_bytes()
        except OSError as e:
            raise DataError(label, f"cannot read file: {e.strerror or e}") from e
        stream: IO[bytes] = io.BytesIO(raw)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        stream = io.BytesIO(bytes(source))
    else:
        label = name or str(getattr(source, "name", "<stream>"))
        stream = source
    start = stream.tell() if stream.seekable() else None
    if start is not None and stream.read(1) == b"":
        raise DataError(label, "empty file (0 bytes); expected a pickle")
    if start is not None:
        stream.seek(start)
    try:
        return SafeUnpickler(stream, allowed_globals, encoding=encoding).load()
    except ForbiddenGlobalError as e:
        raise DataError(
            label,
            f"pickle refers to forbidden global '{e.module}.{e.name}'; refusing to load it "
            f"(only {_allowed_names(allowed_globals)} are allowed). The file is not an "
            "official CIFAR-10 batch, or it was tampered with.",
        ) from None
    except EOFError as e:
        raise DataError(label, f"truncated pickle (ended before its STOP opcode: {e})") from None
    except pickle.UnpicklingError as e:
        what = "truncated pickle" if "truncated" in str(e) else "corrupt pickle"
        raise DataError(label, f"{what}: {e}") from None
    except MemoryError:
        raise DataError(label, "pickle asks for more memory than is available (corrupt file?)") from None
    except Exception as e:  # malformed arguments to the allowed callables, bad opcodes...
        raise DataError(label, f"invalid pickle: {type(e).__name__}: {e}") from None
