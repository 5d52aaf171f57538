"""Train a miamind run config with the MindSpore backend (``miamind train --backend mindspore``).

Same config, same data, same metrics as the PyTorch engine (``miamind.engine.train.train``); only the
model, the loss, the optimiser and the update run in MindSpore:

- **data**: the data module the PyTorch engine builds (``engine.build.build_datamodule_for``); its
  deterministic ``(x, y)`` torch batches become ``mindspore.Tensor`` s batch by batch, so both
  backends see the same samples in the same order for a seed.
- **model**: ``miamind.mindspore.models.create_model`` with the config's arguments. Its initial
  weights are those of the PyTorch model built for the same seed, converted: the two backends
  start from identical weights (and fastnet keeps its Dirac init).
- **loss**: :func:`cross_entropy`, torch's ``F.cross_entropy`` written with MindSpore ops (class
  weights and label smoothing combined as torch does: both terms normalised by the summed weights
  of the targets).
- **optimiser**: ``mindspore.experimental.optim`` SGD (momentum, nesterov) / Adam / AdamW, which
  follow torch's update rules (``mindspore.nn.Adam`` adds eps to the uncorrected second moment, the
  TensorFlow form, and ``nn.AdamWeightDecay`` has no bias correction: neither trains like the
  PyTorch run; ``tests/mindspore/test_train.py`` checks the steps against torch); the same two
  parameter groups (no weight decay on tensors with ndim <= 1); the learning rate set per step by
  ``LambdaLR`` with the very ``lr_lambda`` the PyTorch module uses.
- **training**: PYNATIVE mode, forward and backward op by op through ``mindspore.value_and_grad``
  and the optimiser update compiled (see :func:`make_train_step`); ``jit=True`` compiles the whole
  train step (forward, backward, update) with ``mindspore.jit`` once, which trains identically and
  faster on CPU (no per-op dispatch), after a few seconds of compilation.
- **metrics**: the same torchmetrics collections (``tasks.metrics``) fed with the MindSpore logits
  converted to torch, on val after every epoch and on test once at the end, with the best-on-val
  weights when ``checkpoint.monitor`` is set (and ``checkpoint.evaluate`` is ``best``), else the last.

PyTorch-only settings are not emulated: ``trainer.precision`` other than 32 and
``trainer.channels_last`` train in float32 / the default layout, and metrics.json says so.
One device only (no DDP), no resume.

Run folder: written through the PyTorch engine's run-folder API (:mod:`miamind.engine.run_folder`),
locked while training (:mod:`miamind.engine.run_lock`) as a PyTorch run is; checkpoints in both
formats::

    RUN_DIR/config.yaml, dataset.json, preprocess.json     as the PyTorch engine writes them
    RUN_DIR/metrics.csv                                    one row per epoch (train/val curves)
    RUN_DIR/metrics.json                                   PyTorch's keys + "backend": "mindspore", ...
    RUN_DIR/checkpoints/last.ckpt, best.ckpt               MindSpore checkpoints (mindspore.load_checkpoint)
    RUN_DIR/checkpoints/last_torch.safetensors, best_torch.safetensors
                                                           the same weights as PyTorch state dicts
                                                           (engine.checkpoint_io.load_weights)
    RUN_DIR/plots/*.png                                    learning curves, confusion matrix
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._atomic import as_write_error
from ..tasks.registry import TASKS, get_task
from ._require import require_mindspore

if TYPE_CHECKING:
    from ..engine.config import Config

ms = require_mindspore()
from mindspore import ops  # noqa: E402  (after the check that says how to install MindSpore)

from ..errors import InputError  # noqa: E402

PathLike = str | Path

#: tasks this backend trains (the registry's ``mindspore`` flag; isbi2012 is PyTorch-only)
SUPPORTED_TASKS = tuple(t.name for t in TASKS.values() if t.mindspore)

__all__ = [
    "SUPPORTED_TASKS",
    "train_mindspore",
    "cross_entropy",
    "build_optimizer",
    "make_train_step",
    "build_mindspore_model",
    "evaluate_cell",
    "save_ckpt",
    "to_mindspore",
    "set_threads",
]


# ------------------------------------------------------------------------------------------ pieces
def cross_entropy(logits, target, weight=None, label_smoothing: float = 0.0):
    """Mean cross entropy of ``logits`` (N, K) against class indices ``target`` (N,), as torch computes it.

    ``F.cross_entropy(logits, target, weight=w, label_smoothing=e)`` is
    ``(1 - e) * nll + e / K * smooth`` where ``nll = sum_n w[y_n] * -log p[n, y_n] / sum_n w[y_n]``
    and ``smooth = sum_n sum_k w[k] * -log p[n, k] / sum_n w[y_n]`` (``w`` = 1 without weights).
    ``mindspore.nn.CrossEntropyLoss`` is not used because its label smoothing does not document
    this normalisation with class weights.
    """
    num_classes = logits.shape[1]
    logp = ops.log_softmax(logits.astype(ms.float32), axis=1)
    onehot = ops.one_hot(target, num_classes, ms.Tensor(1.0, ms.float32), ms.Tensor(0.0, ms.float32))
    if weight is None:
        w_target = ops.ones(target.shape, ms.float32)
        smooth = -logp.sum(1)
    else:
        w_target = (onehot * weight).sum(1)
        smooth = -(logp * weight).sum(1)
    denominator = w_target.sum()
    nll = -(w_target * (onehot * logp).sum(1)).sum() / denominator
    if label_smoothing <= 0:
        return nll
    return (1.0 - label_smoothing) * nll + (label_smoothing / num_classes) * (smooth.sum() / denominator)


def build_optimizer(params: Sequence, optim_cfg: Mapping[str, Any]):
    """The config's optimiser over ``params`` (MindSpore Parameters), grouped as the PyTorch module does.

    Two groups: weight decay on tensors with ndim > 1, none on biases and norm parameters.
    """
    import mindspore.experimental.optim as optim

    o = optim_cfg
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": float(o["weight_decay"])},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]  # MindSpore refuses an empty group
    if o["name"] == "sgd":
        return optim.SGD(
            groups, lr=float(o["lr"]), momentum=float(o["momentum"]), nesterov=bool(o["nesterov"])
        )
    if o["name"] in ("adam", "adamw"):
        adam = optim.Adam if o["name"] == "adam" else optim.AdamW
        return adam(groups, lr=float(o["lr"]), betas=tuple(float(b) for b in o["betas"]))
    raise InputError(f"optim.name must be one of sgd, adam, adamw, got {o['name']!r}")


def _clip_by_total_norm(grads, max_norm: float):
    """torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (total L2 norm + 1e-6) when above."""
    total = ops.zeros((), ms.float32)
    for g in grads:
        total = total + (g.astype(ms.float32) ** 2).sum()
    coef = ops.clamp(max_norm / (ops.sqrt(total) + 1e-6), max=1.0)
    return tuple(g * coef for g in grads)


def make_train_step(
    net, optimizer, loss_fn: Callable, *, jit: bool = False, gradient_clip_val: float | None = None
) -> Callable:
    """``step(x, y) -> loss``: forward, backward and one optimiser update of ``net``'s trainable weights.

    ``loss_fn(logits, y)``. Without ``jit`` forward and backward run op by op (PYNATIVE) and only the
    update is compiled: the optimiser's own compiled kernels would otherwise take the gradient tuple
    as constants (MindSpore warns, printing every gradient). With ``jit`` the whole step is one
    compiled graph (``mindspore.jit``), built on the first call.
    """
    clip = None if gradient_clip_val is None else float(gradient_clip_val)

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    def update(grads):
        if clip is not None:
            grads = _clip_by_total_norm(grads, clip)
        return optimizer(grads)

    if jit:

        def step(x, y):
            loss, grads = grad_fn(x, y)
            update(grads)
            return loss

        return ms.jit(step)

    compiled_update = ms.jit(update)

    def pynative_step(x, y):
        loss, grads = grad_fn(x, y)
        compiled_update(ms.mutable(grads))
        return loss

    return pynative_step


def build_mindspore_model(cfg: Config, info):
    """The MindSpore twin of ``engine.build.build_model(cfg, info)`` (same constructor arguments)."""
    from ..engine.build import model_arguments
    from .models import create_model

    name, kwargs = model_arguments(cfg, info)
    return create_model(name, **kwargs)


def to_mindspore(batch) -> tuple[Any, Any]:
    """A torch ``(x float32, y int64)`` batch as MindSpore tensors (labels int32, what one_hot takes)."""
    x, y = batch
    return ms.Tensor(x.numpy()), ms.Tensor(y.numpy().astype(np.int32))


def _limit(n: int, limit: int | float | None) -> int:
    """Lightning's limit_*_batches: an int is a number of batches, a float a fraction (at least 1 batch)."""
    if limit is None:
        return n
    if isinstance(limit, int) and not isinstance(limit, bool):
        return min(n, limit)
    return min(n, max(1, int(n * float(limit))))


def evaluate_cell(
    net,
    loader,
    metrics,
    class_names: Sequence[str],
    *,
    weight=None,
    label_smoothing: float = 0.0,
    limit_batches=None,
) -> dict[str, Any]:
    """Run ``net`` (eval mode) over ``loader``; the torchmetrics collection ``metrics`` judges the logits.

    Returns ``{"metrics": {name: float}, "confmat": list | None, "loss": float}``, the loss averaged
    over samples as Lightning averages ``val/loss`` (batch means weighted by batch size).
    """
    import torch

    from ..tasks.metrics import scalar_metrics

    net.set_train(False)
    metrics.reset()
    total_loss, total_n = 0.0, 0
    n_batches = _limit(len(loader), limit_batches)
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        x, y = to_mindspore(batch)
        logits = net(x)
        total_loss += float(cross_entropy(logits, y, weight, label_smoothing).asnumpy()) * len(batch[1])
        total_n += len(batch[1])
        metrics.update(torch.from_numpy(logits.asnumpy()), batch[1])
    computed = metrics.compute()
    metrics.reset()
    confmat = computed.get("confmat")
    return {
        "metrics": scalar_metrics(computed, class_names),
        "confmat": None if confmat is None else confmat.cpu().tolist(),
        "loss": total_loss / max(total_n, 1),
    }


def save_ckpt(cell, path: PathLike) -> Path:
    """``mindspore.save_checkpoint`` written atomically (a temporary file in the folder, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # save_checkpoint appends ".ckpt" to a name without it, so the temporary name keeps the suffix.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.ckpt")
    try:
        ms.save_checkpoint(cell, str(tmp))
        os.replace(tmp, path)
    except Exception as exc:
        if (failure := as_write_error(exc, path)) is not None:
            raise failure from exc  # MindSpore reports a full disk as its own RuntimeError
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def set_threads(threads: int | None) -> None:
    """``threads`` CPU threads for torch (``set_num_threads``) and MindSpore's CPU kernels; None: defaults.

    MindSpore's count can be set once per process; later calls leave it as it is.
    """
    import torch

    if not threads:
        return
    torch.set_num_threads(int(threads))
    from mindspore.device_context.cpu.op_tuning import RuntimeConf, threads_num

    if not RuntimeConf.get_instance().is_op_threads_num_configured():
        threads_num(int(threads))


def _check_supported(cfg: Config) -> None:
    if cfg.task not in SUPPORTED_TASKS:
        raise InputError(
            f"the MindSpore backend trains the classification tasks {', '.join(SUPPORTED_TASKS)}; "
            f"task {cfg.task!r} needs the PyTorch backend"
        )
    tr = cfg.trainer
    if tr.devices not in (1, "auto") or tr.num_nodes != 1 or tr.strategy != "auto":
        raise InputError(
            "the MindSpore backend trains on one device: config keys trainer.devices (1), "
            f"trainer.num_nodes (1) and trainer.strategy (auto) got {tr.devices!r}, {tr.num_nodes!r}, "
            f"{tr.strategy!r}"
        )


def _improved(current: float, best: float | None, mode: str) -> bool:
    """Lightning's ModelCheckpoint rule: strictly better; a non-finite value never counts."""
    if not math.isfinite(current):
        return False
    if best is None:
        return True
    return current > best if mode == "max" else current < best


# ------------------------------------------------------------------------------------------ train
def train_mindspore(
    cfg: Config, out: PathLike, *, arrays=None, quiet: bool = False, jit: bool = False
) -> dict[str, Any]:
    """Train the resolved config ``cfg`` with MindSpore into the new run folder ``out``; returns metrics.json.

    ``arrays`` injects a dataset (``tasks.synthetic``) as for the PyTorch engine; ``jit`` compiles
    the train step. Raises ValueError for a task or trainer setting this backend does not support,
    ``engine.run_folder.RunError`` when ``out`` already holds a run, and
    ``engine.run_lock.RunFolderInUseError`` when another process trains into ``out``: the folder
    is locked while training, as for the PyTorch engine.
    """
    from ..engine.run_lock import run_folder_lock

    _check_supported(cfg)
    with run_folder_lock(out):
        return _train_in_folder(cfg, Path(out), arrays=arrays, quiet=quiet, jit=jit)


def _train_in_folder(cfg: Config, run_dir: Path, *, arrays, quiet: bool, jit: bool) -> dict[str, Any]:
    import mindspore.experimental.optim as optim

    from ..engine.build import build_data_and_model
    from ..engine.callbacks import NonFiniteLossError
    from ..engine.plots import save_run_plots
    from ..engine.run_folder import (
        check_new_run,
        checkpoint_file,
        run_identity,
        write_metrics,
        write_metrics_csv,
        write_run_inputs,
    )
    from ..engine.summary import format_table, summary_row
    from ..tasks.metrics import flow_metrics, image_metrics
    from ..tasks.modules import lr_lambda
    from .convert import ckpt_to_safetensors, load_into_cell, torch_to_mindspore

    check_new_run(run_dir)
    tr, ck = cfg.trainer, cfg.checkpoint
    set_threads(tr.threads)
    ms.set_context(mode=ms.PYNATIVE_MODE)

    # As the PyTorch engine: the data module, and the PyTorch model for the seed, whose initial
    # weights MindSpore starts from, so both backends start from the same point.
    dm, torch_model = build_data_and_model(cfg, arrays)
    info = dm.info
    reference = {k: v.detach().clone() for k, v in torch_model.state_dict().items()}
    ms.set_seed(int(cfg.seed))  # dropout masks
    net = build_mindspore_model(cfg, info)
    load_into_cell(net, torch_to_mindspore(reference))
    trainable = net.trainable_params()
    n_trainable_torch = sum(p.numel() for p in torch_model.parameters() if p.requires_grad)
    n_trainable_ms = sum(int(np.prod(p.shape)) for p in trainable)
    if n_trainable_ms != n_trainable_torch:
        raise InputError(
            f"MindSpore {cfg.model.name} trains {n_trainable_ms} weights, the PyTorch model "
            f"{n_trainable_torch}: the models' frozen parameters (requires_grad) differ"
        )

    class_names = list(info.class_names)
    weight = None if dm.class_weights is None else ms.Tensor(dm.class_weights.numpy().astype(np.float32))
    smoothing = float(cfg.loss.label_smoothing)
    eval_args = dict(weight=weight, label_smoothing=smoothing, limit_batches=tr.limit_eval_batches)

    def loss_fn(logits, y):
        return cross_entropy(logits, y, weight, smoothing)

    train_loader = dm.train_dataloader()
    val_loader = dm.val_dataloader()
    steps_per_epoch = _limit(len(train_loader), tr.limit_train_batches)
    epochs = int(tr.epochs)
    total_steps = steps_per_epoch * epochs
    optimizer = build_optimizer(trainable, cfg.optim.model_dump())
    scheduler = optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(cfg.schedule.model_dump(), total_steps, total_steps / max(epochs, 1))
    )
    step = make_train_step(net, optimizer, loss_fn, jit=jit, gradient_clip_val=tr.gradient_clip_val)
    task = get_task(cfg.task)
    make_metrics = {"image-classification": image_metrics, "flow-classification": flow_metrics}[task.kind]
    val_metrics = make_metrics(class_names)

    write_run_inputs(run_dir, cfg, dm)
    last_path, best_path = (checkpoint_file(run_dir, which, "mindspore") for which in ("last", "best"))

    monitor, mode = ck.monitor, ck.mode
    best_score: float | None = None
    best_epoch: int | None = None
    rows: list[dict[str, Any]] = []
    val_final: dict[str, Any] = {}
    global_step = 0
    samples_per_s = None
    t_fit = time.perf_counter()
    for epoch in range(epochs):
        train_loader.sampler.set_epoch(epoch)  # what Lightning does: the epoch's deterministic order
        net.set_train(True)
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        lr_first = optimizer.param_groups[0]["lr"]
        lr_first = float(lr_first.asnumpy()) if hasattr(lr_first, "asnumpy") else float(lr_first)
        for i, batch in enumerate(train_loader):
            if i >= steps_per_epoch:
                break
            x, y = to_mindspore(batch)
            loss = float(step(x, y).asnumpy())
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    loss, epoch, global_step, str(last_path) if last_path.exists() else None
                )
            scheduler.step()
            global_step += 1
            seen += len(batch[1])
            loss_sum += loss * len(batch[1])
        seconds = time.perf_counter() - t0
        samples_per_s = seen / seconds if seconds > 0 else None
        row: dict[str, Any] = {
            "epoch": epoch,
            "step": global_step - 1,
            "train/loss": loss_sum / max(seen, 1),
            "lr": lr_first,
            "train/samples_per_s": samples_per_s,
        }
        scores: dict[str, float] = {"train/loss": row["train/loss"]}
        if val_loader:  # an empty list when the config holds out no validation set
            val_final = evaluate_cell(net, val_loader, val_metrics, class_names, **eval_args)
            scores["val/loss"] = val_final["loss"]
            scores.update({f"val/{k}": v for k, v in val_final["metrics"].items()})
            row.update({k: v for k, v in scores.items() if k != "train/loss"})
        rows.append(row)
        save_ckpt(net, last_path)
        if monitor:
            if monitor not in scores:
                raise InputError(
                    f"checkpoint.monitor {monitor!r} is not a logged metric "
                    f"(available: {', '.join(sorted(scores))})"
                )
            if _improved(scores[monitor], best_score, mode):
                best_score, best_epoch = scores[monitor], epoch
                save_ckpt(net, best_path)
        if not quiet:
            shown = f", {monitor} {scores[monitor]:.4f}" if monitor else ""
            print(f"[mindspore] epoch {epoch + 1}/{epochs}: train/loss {row['train/loss']:.4f}{shown}")
    fit_seconds = time.perf_counter() - t_fit
    write_metrics_csv(run_dir, rows)

    # PyTorch copies of the weights, so `miamind evaluate` / predict can use a MindSpore-trained run.
    ckpt_to_safetensors(last_path, checkpoint_file(run_dir, "last", "torch-weights"), reference)
    eval_net, use_best = net, False
    if best_path.exists():
        ckpt_to_safetensors(best_path, checkpoint_file(run_dir, "best", "torch-weights"), reference)
        if ck.evaluate == "best":
            eval_net, use_best = build_mindspore_model(cfg, info), True
            load_into_cell(eval_net, best_path)

    test = evaluate_cell(eval_net, dm.test_dataloader(), make_metrics(class_names), class_names, **eval_args)
    rows.append(
        {
            "epoch": epochs - 1,
            "step": global_step - 1,
            "test/loss": test["loss"],
            **{f"test/{k}": v for k, v in test["metrics"].items()},
        }
    )
    write_metrics_csv(run_dir, rows)

    ignored = {}
    if str(tr.precision) != "32":
        ignored["trainer.precision"] = f"{tr.precision} is a PyTorch setting; MindSpore trained in float32"
    if tr.channels_last:
        ignored["trainer.channels_last"] = (
            "a PyTorch memory-format setting; MindSpore used its default layout"
        )
    metrics = {
        **run_identity(cfg),
        "epochs": epochs,
        "world_size": 1,
        # the same architecture as the PyTorch model (load_into_cell checked every tensor)
        "parameters": int(sum(p.numel() for p in torch_model.parameters())),
        "fit_seconds_this_attempt": round(fit_seconds, 2),
        "train_samples_per_s": None if samples_per_s is None else round(samples_per_s, 1),
        "monitor": monitor,
        "best_score": best_score,
        "evaluated_checkpoint": "best" if use_best else "last",
        "test_split": task.test_split,
        "val_last_epoch": val_final.get("metrics", {}),
        "test": test["metrics"],
        "test_confmat": test["confmat"],
        "class_names": class_names,
        "backend": "mindspore",
        "mindspore_version": ms.__version__,
        "mindspore_mode": "GRAPH (mindspore.jit train step)" if jit else "PYNATIVE",
        "precision": "32",
        "ignored_settings": ignored,
        "initial_weights": "the PyTorch model's initial weights for this seed, converted",
        "best_epoch": best_epoch,
    }
    write_metrics(run_dir, metrics)
    if cfg.plots:
        save_run_plots(run_dir, metrics)
    if not quiet:
        print(format_table([summary_row(metrics)]))
    return metrics
