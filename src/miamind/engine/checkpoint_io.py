"""Checkpoints as ``.safetensors``: tensors as tensors, everything else as JSON; never pickle.

Lightning's checkpoint is a nested dict (model ``state_dict``, ``optimizer_states`` with
int-keyed ``state``, ``lr_schedulers``, loop progress, callback states keyed by strings,
``hyper_parameters``, ...). :class:`SafetensorsCheckpointIO` flattens it:

- every tensor becomes one entry of the safetensors file, named by its JSON-encoded key path
  (``["state_dict", "fc.weight"]``), so any dict key survives, separators included;
- everything else becomes a JSON *skeleton* stored in the file's metadata. The skeleton keeps
  the structure and the Python types: ``None``, ``bool``, ``int``, ``float`` (``nan``/``inf``
  too), ``str``, ``list`` vs ``tuple``, ``dict`` vs ``OrderedDict`` (with a module state
  dict's ``_metadata``), dict keys that are not strings (ints, tuples, ...), ``torch.Size``,
  ``pathlib`` paths and numpy arrays. Numpy scalars are stored as the matching Python scalar.

Any other object is refused with a ``TypeError`` naming its key path: a checkpoint that needs
pickle to be read back is a checkpoint that can run code when loaded.

Files are written atomically (temp file in the same folder, fsync, ``os.replace``), so a crash
or a SIGKILL mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins import CheckpointIO
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._atomic import PathLike, atomic_path
from ..errors import UserError

SUFFIX = ".safetensors"
FORMAT = "miamind.lightning-checkpoint"
FORMAT_VERSION = "1"
SKELETON_KEY = "miamind.checkpoint"
WEIGHTS_METADATA_KEY = "miamind"

# dtypes safetensors stores natively; anything else (complex128, quantised, ...) is refused by
# name instead of failing deep inside the writer
_SAVABLE_DTYPES = {
    getattr(torch, n)
    for n in (
        "float64 float32 float16 bfloat16 int64 int32 int16 int8 uint8 bool "
        "uint16 uint32 uint64 float8_e4m3fn float8_e5m2"
    ).split()
    if hasattr(torch, n)
}


class CheckpointFormatError(UserError, ValueError):
    """A file that is not a checkpoint this module wrote (wrong suffix, a pickle, corrupt)."""

    def __init__(self, path: PathLike, message: str):
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


_PICKLE_HINT = (
    "miamind never unpickles checkpoints (loading a pickle can run arbitrary code). If you trust "
    "this file, convert it once with miamind.engine.checkpoint_io.convert_torch_checkpoint(src, dst), "
    "which reads it with torch.load(weights_only=True) and writes a .safetensors checkpoint."
)


# ---------------------------------------------------------------------------------------------
# flatten / unflatten


def _where(path: list[Any]) -> str:
    return "checkpoint" + "".join(f"[{k!r}]" for k in path)


class _Flattener:
    """Walks a nested object; collects tensors into ``self.tensors``, returns the JSON skeleton."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._storages: set = set()

    def encode(self, obj: Any, path: list[Any]) -> Any:
        # order matters: bool before int, numpy scalars (np.float64 is a float) before float
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), path)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"float": repr(float(obj))}
        if isinstance(obj, torch.Tensor):
            return {"tensor": self._add_tensor(obj, path)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError(
                    f"{_where(path)}: numpy array of dtype object cannot be stored without pickle"
                )
            return {"ndarray": self._add_tensor(torch.from_numpy(np.ascontiguousarray(obj)), path)}
        if isinstance(obj, PurePath):  # e.g. a data_dir in the hyper-parameters
            return {"path": str(obj)}
        if isinstance(obj, torch.Size):
            return {"size": [int(d) for d in obj]}
        if type(obj) is list:
            return [self.encode(v, path + [i]) for i, v in enumerate(obj)]
        if type(obj) is tuple:
            return {"tuple": [self.encode(v, path + [i]) for i, v in enumerate(obj)]}
        if isinstance(obj, OrderedDict):
            node: dict[str, Any] = {"odict": self._items(obj, path)}
            meta = getattr(obj, "_metadata", None)  # nn.Module.state_dict() version info
            if meta is not None:
                node["meta"] = self.encode(meta, path + ["_metadata"])
            return node
        if isinstance(obj, dict):  # other dict subclasses (AttributeDict, defaultdict) come back as dict
            return {"dict": self._items(obj, path)}
        raise TypeError(
            f"{_where(path)}: cannot store an object of type {type(obj).__module__}.{type(obj).__qualname__} "
            "in a safetensors checkpoint (only tensors, numpy arrays, None/bool/int/float/str/Path "
            "and lists/tuples/dicts of them are allowed; pickle is never used). Keep hyper-parameters "
            "and callback states to plain values."
        )

    def _items(self, mapping: Mapping, path: list[Any]) -> list[list[Any]]:
        return [[self._key(k, path), self.encode(v, path + [k])] for k, v in mapping.items()]

    def _key(self, key: Any, path: list[Any]) -> Any:
        if isinstance(key, (torch.Tensor, np.ndarray)) or not _is_hashable_plain(key):
            raise TypeError(
                f"{_where(path)}: dict key {key!r} of type {type(key).__qualname__} cannot be stored"
            )
        return self.encode(key, path + [key])

    def _add_tensor(self, tensor: torch.Tensor, path: list[Any]) -> str:
        name = json.dumps([_json_key(k) for k in path], ensure_ascii=False)
        base, n = name, 1
        while name in self.tensors:  # only if two distinct keys print alike (1 and "1" cannot; be safe)
            name, n = f"{base}#{n}", n + 1
        self.tensors[name] = _prepare_tensor(tensor, _where(path), self._storages)
        return name


def _is_hashable_plain(key: Any) -> bool:
    if key is None or isinstance(key, (bool, int, float, str, np.generic)):
        return True
    return type(key) is tuple and all(_is_hashable_plain(k) for k in key)


def _json_key(key: Any) -> Any:
    """A key path component as plain JSON (for the tensor's name only; types live in the skeleton)."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, float) and not math.isfinite(key):
        return repr(key)
    if isinstance(key, tuple):
        return [_json_key(k) for k in key]
    return key


def _prepare_tensor(tensor: torch.Tensor, where: str, seen_storages: set) -> torch.Tensor:
    """A CPU, contiguous tensor owning its whole storage, as safetensors requires.

    Views, slices, non-contiguous and storage-sharing tensors (tied weights, optimizer states
    aliasing parameters) are cloned; tensors that already own their storage are written as is.
    """
    if tensor.layout != torch.strided:
        raise TypeError(f"{where}: {tensor.layout} tensors are not supported; convert with .to_dense()")
    if tensor.dtype not in _SAVABLE_DTYPES:
        raise TypeError(f"{where}: tensor dtype {tensor.dtype} cannot be stored in safetensors")
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    storage = t.untyped_storage()
    owns_storage = (
        t.is_contiguous() and t.storage_offset() == 0 and storage.nbytes() == t.numel() * t.element_size()
    )
    ptr = storage.data_ptr()
    if not owns_storage or (ptr != 0 and ptr in seen_storages):
        t = t.clone(memory_format=torch.contiguous_format)
        ptr = t.untyped_storage().data_ptr()
    if ptr != 0:
        seen_storages.add(ptr)
    return t


def _decode(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    (tag, value), *_ = node.items()
    if tag == "tensor":
        return tensors[value]
    if tag == "ndarray":
        return tensors[value].cpu().numpy()
    if tag == "float":
        return float(value)
    if tag == "tuple":
        return tuple(_decode(v, tensors) for v in value)
    if tag == "size":
        return torch.Size(value)
    if tag == "path":
        return Path(value)
    if tag in ("dict", "odict"):
        items = [(_decode(k, tensors), _decode(v, tensors)) for k, v in value]
        if tag == "dict":
            return dict(items)
        out = OrderedDict(items)
        if "meta" in node:
            out._metadata = _decode(node["meta"], tensors)  # type: ignore[attr-defined]
        return out
    raise ValueError(f"unknown skeleton node {tag!r}")


def flatten_checkpoint(checkpoint: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """``(tensors, skeleton_json)`` for a nested checkpoint; ``TypeError`` names an unstorable value."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict, got {type(checkpoint).__qualname__}")
    flat = _Flattener()
    skeleton = flat.encode(checkpoint, [])
    return flat.tensors, json.dumps(skeleton, ensure_ascii=False, allow_nan=False)


def unflatten_checkpoint(tensors: Mapping[str, torch.Tensor], skeleton_json: str) -> dict[str, Any]:
    """Inverse of :func:`flatten_checkpoint`."""
    return _decode(json.loads(skeleton_json), tensors)


# ---------------------------------------------------------------------------------------------
# files


def _atomic_save_tensors(path: PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (see ``miamind._atomic``)."""
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _check_safetensors_file(path: Path) -> None:
    """Refuse, by content, anything that is not a safetensors file; name pickles as such."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then the JSON header
    header_len = int.from_bytes(head[:8], "little")
    if len(head) == 9 and head[8:9] == b"{" and 8 + header_len <= path.stat().st_size:
        return
    if head[:4] == b"PK\x03\x04" or (
        head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    ):
        raise CheckpointFormatError(path, "this is a pickled PyTorch/Lightning checkpoint. " + _PICKLE_HINT)
    raise CheckpointFormatError(
        path, f"not a safetensors file (expected a '{SUFFIX}' checkpoint). " + _PICKLE_HINT
    )


def _device_for(map_location: Any) -> str | torch.device | None:
    """The target device of a ``torch.load``-style ``map_location``; ``None`` means a callable."""
    if map_location is None:
        return "cpu"
    if isinstance(map_location, (str, torch.device)):
        return map_location
    if isinstance(map_location, Mapping):  # tensors were saved from CPU copies
        return map_location.get("cpu", "cpu")
    if callable(map_location):
        return None
    raise TypeError(f"unsupported map_location {map_location!r}")


def _read_safetensors(path: Path, map_location: Any) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    _check_safetensors_file(path)
    device = _device_for(map_location)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as err:
        raise CheckpointFormatError(path, f"not a readable safetensors file ({err})") from None
    if device is None:  # torch-style callable(storage, location); Lightning's default returns it as is
        moved = {k: map_location(t, "cpu") for k, t in tensors.items()}
        tensors = {k: (m if isinstance(m, torch.Tensor) else tensors[k]) for k, m in moved.items()}
    elif torch.device(device).type != "cpu":
        tensors = {k: t.to(device) for k, t in tensors.items()}
    return tensors, metadata


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning ``CheckpointIO`` storing the whole checkpoint as one ``.safetensors`` file.

    Use ``Trainer(plugins=[SafetensorsCheckpointIO()])``. ``load_checkpoint`` refuses anything
    but a ``.safetensors`` file this class wrote, and never unpickles.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint does not support storage_options")
        tensors, skeleton = flatten_checkpoint(checkpoint)
        metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, SKELETON_KEY: skeleton}
        _atomic_save_tensors(path, tensors, metadata)

    def load_checkpoint(
        self, path: PathLike, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # weights_only is accepted for Lightning's signature; nothing here can unpickle anyway
        path = Path(path)
        tensors, metadata = _read_safetensors(path, map_location)
        if SKELETON_KEY not in metadata:
            raise CheckpointFormatError(
                path,
                "a safetensors file without a training-checkpoint skeleton (plain weights? "
                "read it with miamind.engine.checkpoint_io.load_weights)",
            )
        if metadata.get("format_version") != FORMAT_VERSION:
            raise CheckpointFormatError(
                path,
                f"checkpoint format version {metadata.get('format_version')!r}, expected {FORMAT_VERSION!r}",
            )
        try:
            return unflatten_checkpoint(tensors, metadata[SKELETON_KEY])
        except (ValueError, KeyError, AttributeError) as err:
            raise CheckpointFormatError(path, f"corrupt checkpoint skeleton ({err!r})") from None

    def remove_checkpoint(self, path: PathLike) -> None:
        Path(path).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# plain weights


def _check_json_metadata(obj: Any, where: str) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_json_metadata(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string (JSON would silently turn it into one)")
            _check_json_metadata(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where}: value of type {type(obj).__qualname__} is not JSON-serialisable")


def save_weights(path: PathLike, state_dict: Mapping[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write a flat ``state_dict`` as ``.safetensors`` (atomically), ``metadata`` as JSON under "miamind".

    Tensor names are the state-dict keys, so any safetensors reader sees the usual layout.
    ``metadata`` must be JSON-serialisable with string keys (tuples come back as lists).
    """
    _check_json_metadata(metadata, "metadata")
    tensors: dict[str, torch.Tensor] = {}
    storages: set = set()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] is a {type(value).__qualname__}, not a tensor")
        tensors[key] = _prepare_tensor(value, f"state_dict[{key!r}]", storages)
    _atomic_save_tensors(path, tensors, {WEIGHTS_METADATA_KEY: json.dumps(metadata, ensure_ascii=False)})


def load_weights(path: PathLike, map_location: Any = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` from a file written by :func:`save_weights` (metadata ``{}`` if absent)."""
    path = Path(path)
    tensors, metadata = _read_safetensors(path, map_location)
    if SKELETON_KEY in metadata:
        raise CheckpointFormatError(
            path,
            "this is a full training checkpoint; read it with "
            "SafetensorsCheckpointIO().load_checkpoint(path)['state_dict']",
        )
    raw = metadata.get(WEIGHTS_METADATA_KEY)
    try:
        meta = json.loads(raw) if raw is not None else {}
    except json.JSONDecodeError as err:
        raise CheckpointFormatError(
            path, f"metadata key {WEIGHTS_METADATA_KEY!r} is not valid JSON ({err})"
        ) from None
    return tensors, meta


def convert_torch_checkpoint(src: PathLike, dst: PathLike) -> None:
    """Convert a trusted ``torch.save``/Lightning ``.ckpt`` into a safetensors checkpoint.

    Reads with ``torch.load(weights_only=True)`` (no arbitrary code); objects that loader refuses
    or that are not plain values make this fail with the loader's / a ``TypeError`` message.
    """
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    SafetensorsCheckpointIO().save_checkpoint(checkpoint, dst)
