"""Weights between PyTorch and MindSpore: names, layouts, files. numpy arrays are the interchange.

Both frameworks name a parameter by its attribute path (``layer1.0.conv1.weight``), so a MindSpore
cell written with the same attribute names as the PyTorch module (as every cell in
:mod:`miamind.mindspore` is) has the same parameter names and layouts, except for batch norm
(``weight``/``bias``/``running_mean``/``running_var`` are ``gamma``/``beta``/``moving_mean``/
``moving_variance``; ``num_batches_tracked`` is dropped) and 1-D convolutions (PyTorch's (O, I, k)
weight is MindSpore's (O, I, 1, k)): the table is in ``docs/mindspore.md``.

How each direction decides:

- PyTorch -> MindSpore (:func:`torch_to_mindspore`): a prefix with a ``running_mean`` entry is a
  batch norm (its ``weight``/``bias``/``running_*`` are renamed, ``num_batches_tracked`` dropped);
  every 3-D ``*.weight`` is a 1-D convolution weight and gains the unit axis (PyTorch has no other
  standard layer with a 3-D weight).
- MindSpore -> PyTorch (:func:`mindspore_to_torch`): ``gamma``/``beta``/``moving_mean``/
  ``moving_variance`` are renamed back (MindSpore uses these names only for normalisation layers).
  Which (O, I, 1, k) weights are 1-D convolutions cannot be read from the shape -- a 2-D conv with a
  (1, k) kernel looks the same -- so it comes from ``reference_state_dict`` (the target PyTorch
  model's ``state_dict()``: the reliable way), else from ``conv1d_weights`` (names), else from the
  layout record that :func:`safetensors_to_ckpt` stores in the ``.ckpt`` file. Without any of them
  4-D weights stay 4-D and ``load_state_dict`` names the mismatch.

Not mapped (no miamind model uses them): LayerNorm/GroupNorm ``weight``/``bias`` (MindSpore:
``gamma``/``beta``) in the PyTorch -> MindSpore direction. Hyper-parameters are not weights and do not
travel: MindSpore's BatchNorm ``momentum`` is PyTorch's ``1 - momentum`` (0.9 there = 0.1 here).

Files: ``.safetensors`` (plain weights from :func:`miamind.engine.checkpoint_io.save_weights`, or a
miamind run's Lightning checkpoint, whose ``state_dict`` keys start with ``model.``; a run folder
picks ``checkpoints/best.safetensors``) <-> MindSpore ``.ckpt`` (MindSpore's own protobuf format,
written and read by ``mindspore.save_checkpoint`` / ``mindspore.load_checkpoint``). Nothing here
unpickles anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._require import require_mindspore

ms = require_mindspore()

from .._atomic import atomic_path  # noqa: E402
from ..errors import InputError  # noqa: E402

__all__ = [
    "TORCH_TO_MINDSPORE_BN",
    "torch_to_mindspore",
    "mindspore_to_torch",
    "torch_to_mindspore_names",
    "params_of",
    "load_into_cell",
    "load_torch_state_dict",
    "load_ckpt",
    "safetensors_to_ckpt",
    "ckpt_to_safetensors",
]

PathLike = str | os.PathLike

#: batch-norm leaf names, PyTorch -> MindSpore (``num_batches_tracked`` has no MindSpore counterpart)
TORCH_TO_MINDSPORE_BN: dict[str, str] = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_MINDSPORE_TO_TORCH_BN = {v: k for k, v in TORCH_TO_MINDSPORE_BN.items()}
_NUM_BATCHES = "num_batches_tracked"

#: key of the JSON string :func:`safetensors_to_ckpt` appends to a ``.ckpt`` (not a parameter)
LAYOUT_KEY = "miamind.torch_layout"
_LAYOUT_FORMAT = "miamind.mindspore-ckpt"
_LAYOUT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# names and arrays


def _split(name: str) -> tuple[str, str]:
    prefix, _, leaf = name.rpartition(".")
    return prefix, leaf


def _join(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def _bn_prefixes(names: Iterable[str], marker: str) -> set[str]:
    return {_split(n)[0] for n in names if _split(n)[1] == marker}


def torch_to_mindspore_names(names: Iterable[str]) -> dict[str, str | None]:
    """PyTorch ``state_dict`` name -> MindSpore parameter name (``None``: not carried over).

    Batch norms are recognised by their ``running_mean`` entry, so pass all names of one model.
    """
    names = list(names)
    bn = _bn_prefixes(names, "running_mean")
    out: dict[str, str | None] = {}
    for name in names:
        prefix, leaf = _split(name)
        if prefix in bn and leaf == _NUM_BATCHES:
            out[name] = None
        elif prefix in bn and leaf in TORCH_TO_MINDSPORE_BN:
            out[name] = _join(prefix, TORCH_TO_MINDSPORE_BN[leaf])
        else:
            out[name] = name
    return out


def _torch_to_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value.copy()
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(value).__name__}")
    if value.dtype == torch.bfloat16:
        raise TypeError(f"{name}: bfloat16 has no numpy dtype; cast the state dict to float32 first")
    # copy: the result must not alias the (possibly still training) PyTorch tensor
    return value.detach().cpu().contiguous().numpy().copy()


def torch_to_mindspore(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` as MindSpore-named numpy arrays (see the module table).

    Values may be tensors or numpy arrays; every array is a copy. 3-D ``*.weight`` arrays
    (Conv1d) become (O, I, 1, k); batch norms lose ``num_batches_tracked``.
    """
    mapping = torch_to_mindspore_names(state_dict)
    out: dict[str, np.ndarray] = {}
    for name, value in state_dict.items():
        ms_name = mapping[name]
        if ms_name is None:
            continue
        array = _torch_to_numpy(name, value)
        if array.ndim == 3 and _split(name)[1] == "weight":
            array = array[:, :, None, :]  # Conv1d (O, I, k) -> MindSpore's (O, I, 1, k)
        out[ms_name] = np.array(array, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
    return out


def _conv1d_from_reference(reference: Mapping[str, Any]) -> set[str]:
    return {n for n, v in reference.items() if _split(n)[1] == "weight" and len(tuple(v.shape)) == 3}


def mindspore_to_torch(
    params: Mapping[str, Any],
    reference_state_dict: Mapping[str, torch.Tensor] | None = None,
    *,
    conv1d_weights: Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """MindSpore-named arrays (or MindSpore tensors/parameters) as a PyTorch ``state_dict``.

    Args:
        params: name -> numpy array / ``mindspore.Tensor`` (e.g. :func:`params_of` or a loaded ``.ckpt``).
        reference_state_dict: the target model's ``state_dict()``. When given the result is checked
            against it (missing / unexpected names and shapes raise ``ValueError`` naming them), Conv1d
            weights are found from it and ``num_batches_tracked`` is copied from it.
        conv1d_weights: PyTorch names of Conv1d weights, when there is no reference.

    Without a reference, ``num_batches_tracked`` of every batch norm is restored as 0.
    """
    arrays = {name: _to_numpy(name, value) for name, value in params.items()}
    ref = dict(reference_state_dict) if reference_state_dict is not None else None
    conv1d = set(conv1d_weights or ())
    if ref is not None:
        conv1d |= _conv1d_from_reference(ref)
    bn = _bn_prefixes(arrays, "moving_mean")

    out: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        prefix, leaf = _split(name)
        torch_name = name
        # a PyTorch parameter literally called "gamma" (e.g. a layer scale) keeps its name
        if leaf in _MINDSPORE_TO_TORCH_BN and not (ref is not None and name in ref):
            torch_name = _join(prefix, _MINDSPORE_TO_TORCH_BN[leaf])
        if torch_name in conv1d and array.ndim == 4 and array.shape[2] == 1:
            array = array[:, :, 0, :]
        out[torch_name] = torch.from_numpy(np.array(array, copy=True, order="C"))
    for prefix in sorted(bn):
        name = _join(prefix, _NUM_BATCHES)
        if ref is None:
            out[name] = torch.zeros((), dtype=torch.long)  # what a fresh nn.BatchNorm holds
        elif name in ref:
            out[name] = ref[name].detach().cpu().clone()
    if ref is not None:
        _check_names(
            {n: tuple(v.shape) for n, v in ref.items()},
            {n: tuple(v.shape) for n, v in out.items()},
            "PyTorch reference state dict",
        )
        # keep the reference's order, so the result reads like model.state_dict()
        out = {n: out[n] for n in ref}
    return out


def _to_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, ms.Tensor):  # Parameter is a Tensor
        return value.asnumpy().copy()
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name}: got a torch.Tensor where MindSpore parameters were expected; "
            "convert a PyTorch state dict with torch_to_mindspore() first"
        )
    raise TypeError(f"{name}: expected a numpy array or mindspore.Tensor, got {type(value).__name__}")


def _check_names(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]], target: str
) -> None:
    """ValueError naming every missing, unexpected and shape-mismatched name (all at once)."""
    missing = [n for n in expected if n not in got]
    unexpected = [n for n in got if n not in expected]
    mismatched = [
        f"{n}: got {tuple(got[n])}, expected {tuple(expected[n])}"
        for n in expected
        if n in got and tuple(got[n]) != tuple(expected[n])
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    if mismatched:
        problems.append(f"shape mismatch [{'; '.join(mismatched)}]")
    if problems:
        raise InputError(f"weights do not fit the {target}: " + ", ".join(problems))


# ---------------------------------------------------------------------------------------------
# cells


def params_of(cell: Any) -> dict[str, np.ndarray]:
    """All parameters of a MindSpore cell (trainable and not, e.g. BN moving statistics) as numpy copies."""
    return {name: p.asnumpy().copy() for name, p in cell.parameters_and_names()}


def load_into_cell(cell: Any, params: Mapping[str, Any] | PathLike) -> None:
    """Copy ``params`` into ``cell``'s parameters, strictly.

    ``params``: name -> numpy array / ``mindspore.Tensor`` keyed by MindSpore names (e.g. from
    :func:`torch_to_mindspore`), or a path: a ``.ckpt`` file, a ``.safetensors`` file (PyTorch
    weights or a miamind Lightning checkpoint) or a miamind run folder.

    Raises ``ValueError`` naming every missing, unexpected and shape-mismatched name before any
    parameter is changed. Floating-point arrays are cast to each parameter's dtype.
    """
    if isinstance(params, (str, os.PathLike)):
        path = Path(params)
        params = (
            load_ckpt(path) if path.suffix == ".ckpt" else torch_to_mindspore(load_torch_state_dict(path))
        )
    arrays = {name: _to_numpy(name, value) for name, value in params.items()}
    targets = dict(cell.parameters_and_names())
    _check_names(
        {n: tuple(p.shape) for n, p in targets.items()},
        {n: a.shape for n, a in arrays.items()},
        f"MindSpore cell {type(cell).__name__}",
    )
    for name, p in targets.items():
        # copy: a Tensor built from an array may share its buffer with the caller's array
        p.set_data(ms.Tensor(np.array(arrays[name], copy=True), dtype=p.dtype))


# ---------------------------------------------------------------------------------------------
# files


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    from ..engine.checkpoint_io import CheckpointFormatError

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except SafetensorError as err:  # truncated, or not a safetensors file at all
        raise CheckpointFormatError(path, f"not a readable safetensors file ({err})") from None


def _resolve_torch_file(path: PathLike) -> Path:
    path = Path(path)
    if path.is_dir():  # a miamind run folder
        from ..engine.run_folder import checkpoint_path

        path = checkpoint_path(path, "best")
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: expected a .safetensors file or a miamind run folder")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


def load_torch_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """The model weights in a ``.safetensors`` file or a miamind run folder, PyTorch names.

    A Lightning checkpoint (written by :class:`miamind.engine.checkpoint_io.SafetensorsCheckpointIO`)
    gives its ``state_dict`` entries under ``model.`` with the prefix removed (the task module's other
    buffers, e.g. class weights, are not model weights); a plain weights file is read as is.
    A run folder gives ``checkpoints/best.safetensors`` (``last`` for runs without a monitored metric).
    """
    from safetensors.torch import load_file

    from ..engine.checkpoint_io import SKELETON_KEY, SafetensorsCheckpointIO

    path = _resolve_torch_file(path)
    if SKELETON_KEY in _safetensors_metadata(path):
        state = SafetensorsCheckpointIO().load_checkpoint(path)["state_dict"]
        return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return load_file(str(path))


def _weights_metadata(path: PathLike) -> dict[str, Any] | None:
    """The JSON metadata of a plain weights file (``save_weights``); ``None`` for anything else."""
    from ..engine.checkpoint_io import SKELETON_KEY, WEIGHTS_METADATA_KEY, load_weights

    path = _resolve_torch_file(path)
    metadata = _safetensors_metadata(path)
    if SKELETON_KEY in metadata or WEIGHTS_METADATA_KEY not in metadata:
        return None
    return load_weights(path)[1]


def safetensors_to_ckpt(src: PathLike, dst: PathLike) -> dict[str, np.ndarray]:
    """Write the PyTorch weights in ``src`` as a MindSpore ``.ckpt`` (atomically); returns the arrays.

    ``src``: a ``.safetensors`` weights file, a miamind Lightning checkpoint or a run folder.
    ``dst`` must end in ``.ckpt`` (MindSpore appends it otherwise). Besides the parameters, the file
    holds one string entry ``miamind.torch_layout`` (JSON: the Conv1d weight names, each batch norm's
    ``num_batches_tracked``, the source's miamind metadata) so :func:`ckpt_to_safetensors` restores
    the PyTorch file exactly. ``mindspore.load_checkpoint`` returns it as a ``str`` next to the
    parameters; :func:`load_ckpt` and :func:`load_into_cell` leave it out.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix != ".ckpt":
        raise InputError(f"{dst}: a MindSpore checkpoint path must end in .ckpt")
    state = load_torch_state_dict(src)
    params = torch_to_mindspore(state)
    layout = {
        "format": _LAYOUT_FORMAT,
        "version": _LAYOUT_VERSION,
        "conv1d_weights": sorted(_conv1d_from_reference(state)),
        "num_batches_tracked": {n: int(v) for n, v in state.items() if _split(n)[1] == _NUM_BATCHES},
        "metadata": _weights_metadata(src),
    }
    entries = [{"name": name, "data": ms.Tensor(array)} for name, array in params.items()]
    with atomic_path(dst) as tmp:
        tmp_ckpt = tmp.with_name(tmp.name + ".ckpt")  # MindSpore insists on the suffix
        try:
            ms.save_checkpoint(entries, str(tmp_ckpt), append_dict={LAYOUT_KEY: json.dumps(layout)})
            os.replace(tmp_ckpt, tmp)
        finally:
            tmp_ckpt.unlink(missing_ok=True)
    return params


def _read_ckpt(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    path = Path(path)
    if path.suffix != ".ckpt":
        raise InputError(f"{path}: expected a MindSpore .ckpt file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = ms.load_checkpoint(str(path))
    layout = None
    params: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name == LAYOUT_KEY:
            try:
                layout = json.loads(value)
            except (TypeError, json.JSONDecodeError) as err:
                raise InputError(f"{path}: entry {LAYOUT_KEY!r} is not valid JSON ({err})") from None
            if layout.get("format") != _LAYOUT_FORMAT or layout.get("version") != _LAYOUT_VERSION:
                raise InputError(
                    f"{path}: unknown {LAYOUT_KEY} format {layout.get('format')!r} "
                    f"version {layout.get('version')!r}"
                )
        elif isinstance(value, ms.Tensor):
            params[name] = value.asnumpy().copy()
        else:
            raise InputError(f"{path}: entry {name!r} is a {type(value).__name__}, not a parameter")
    return params, layout


def load_ckpt(path: PathLike) -> dict[str, np.ndarray]:
    """The parameters of a MindSpore ``.ckpt`` as numpy arrays (MindSpore names)."""
    return _read_ckpt(path)[0]


def ckpt_to_safetensors(
    src: PathLike,
    dst: PathLike,
    reference_state_dict: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Write a MindSpore ``.ckpt`` as a PyTorch ``.safetensors`` weights file (atomically); returns it.

    The file is what :func:`miamind.engine.checkpoint_io.save_weights` writes (readable with
    ``load_weights`` or ``safetensors.torch.load_file``). Conv1d layouts and ``num_batches_tracked``
    come from ``reference_state_dict`` when given (and the result is checked against it), else from
    the layout record of a ``.ckpt`` written by :func:`safetensors_to_ckpt`. The ``.ckpt`` must hold
    network parameters only: anything the reference does not have (e.g. optimizer moments saved by
    MindSpore's ``ModelCheckpoint``) is named in a ``ValueError``.
    """
    from ..engine.checkpoint_io import save_weights

    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise InputError(f"{dst}: the output path must end in .safetensors")
    params, layout = _read_ckpt(src)
    layout = layout or {}
    state = mindspore_to_torch(params, reference_state_dict, conv1d_weights=layout.get("conv1d_weights"))
    if reference_state_dict is None:
        for name, count in layout.get("num_batches_tracked", {}).items():
            if name in state:
                state[name] = torch.tensor(count, dtype=torch.long)
    metadata = layout.get("metadata")
    save_weights(dst, state, metadata if metadata is not None else {"converted_from": Path(src).name})
    return state
