"""One LightningModule for the three tasks: image classification, binary segmentation, flow classification.

The module owns the loss, the optimiser and schedule, and the metrics (``tasks/metrics.py``); the
model comes from ``miamind.models`` and knows nothing of training. Metrics are torchmetrics
collections, so they are correct under DDP; the per-class vectors and the confusion matrix of the
last evaluation are kept in ``last_eval`` for the run folder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..engine.schema import TTA_MODES
from .datamodules import crop_to_target
from .metrics import SliceRandVI, flow_metrics, image_metrics, scalar_metrics, segmentation_metrics
from .registry import KINDS


def lr_lambda(schedule: Mapping[str, Any], total_steps: int, steps_per_epoch: float):
    """Multiplier of the base lr at optimisation step ``s``: linear warm-up, then constant/linear/cosine."""
    warmup = int(round(float(schedule["warmup_epochs"]) * steps_per_epoch))
    warmup = min(warmup, max(total_steps - 1, 0))
    final = float(schedule["final_lr_ratio"])
    name = schedule["name"]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if name == "constant":
            return 1.0
        span = max(total_steps - warmup, 1)
        t = min((step - warmup) / span, 1.0)
        if name == "linear":
            return 1.0 - (1.0 - final) * t
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


class TaskModule(pl.LightningModule):
    """Trains ``model`` on a task of kind ``kind`` with the given optimiser, schedule and loss config.

    ``channels_last``: the model's weights and 4-D inputs in the channels-last memory format.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        kind: str,
        class_names: Sequence[str],
        optim: Mapping[str, Any],
        schedule: Mapping[str, Any],
        loss: Mapping[str, Any],
        class_weights: torch.Tensor | None = None,
        channels_last: bool = False,
        tta: str = "none",
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if tta not in TTA_MODES or (tta != "none" and kind != "image-classification"):
            raise ValueError(
                f"tta must be one of {TTA_MODES}, and 'none' unless the task is image classification; "
                f"got {tta!r} for {kind}"
            )
        # The Lightning convention: the arguments (the config, not the network, whose weights are
        # in the state dict, nor the class weights, a buffer there) travel in every checkpoint as
        # "hyper_parameters"; miamind.engine.load.load_run rebuilds the module from them.
        self.save_hyperparameters(ignore=["model", "class_weights"])
        self.tta = tta
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.kind = kind
        self.class_names = tuple(class_names)
        self.optim_cfg = dict(optim)
        self.schedule_cfg = dict(schedule)
        self.label_smoothing = float(loss.get("label_smoothing", 0.0))
        self.channels_last = channels_last
        # A buffer moves with the module (device, DDP) and is saved with the weights.
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float())
        make = {
            "image-classification": image_metrics,
            "flow-classification": flow_metrics,
            "segmentation": segmentation_metrics,
        }[kind]
        self.val_metrics = make(self.class_names)
        self.test_metrics = make(self.class_names)
        if kind == "segmentation":
            self.val_slices = SliceRandVI()
            self.test_slices = SliceRandVI()
        self.last_eval: dict[str, dict[str, Any]] = {}
        self._epoch_start = 0.0
        self._epoch_samples = 0

    # ---------------------------------------------------------------- forward and loss
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def predict_logits(self, x: torch.Tensor, tta: str | None = None) -> torch.Tensor:
        """Evaluation logits, averaged over the test-time augmentations of ``tta`` (default
        ``self.tta``).

        ``flip``: the image and its mirror image, averaged. ``flip_translate``: that, averaged
        half-and-half with the same for the image shifted one pixel up-left and one pixel
        down-right (reflect padding) -- airbench's TTA (Jordan 2024), derived, not copied.
        """
        tta = self.tta if tta is None else tta
        if tta == "none":
            return self(x)

        def mirrored(images: torch.Tensor) -> torch.Tensor:
            return 0.5 * (self(images).float() + self(images.flip(-1)).float())

        logits = mirrored(x)
        if tta == "flip_translate":
            h, w = x.shape[-2:]
            padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
            shifted = [padded[..., :h, :w], padded[..., 2:, 2:]]
            logits = 0.5 * logits + 0.25 * (mirrored(shifted[0]) + mirrored(shifted[1]))
        return logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), target, weight=self.class_weights, label_smoothing=self.label_smoothing
        )

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_samples = 0

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self._epoch_samples += x.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=x.shape[0])
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        seconds = time.perf_counter() - self._epoch_start
        if seconds > 0:
            # Per process; the run summary multiplies by the world size.
            self.log("train/samples_per_s", self._epoch_samples / seconds, on_epoch=True, sync_dist=False)

    # ---------------------------------------------------------------- evaluation
    def _eval_step(self, batch, stage: str) -> None:
        x, y = batch
        # TTA is for the reported (test) evaluation; the per-epoch validation that picks the
        # checkpoint uses the plain forward: every epoch compared alike, at 1/6 of the cost.
        logits = self.predict_logits(x, None if stage == "test" else "none")
        if self.kind == "segmentation":
            logits = crop_to_target(logits, y)
        logits = logits.float()
        loss = self.loss(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=x.shape[0])
        getattr(self, f"{stage}_metrics").update(logits, y)
        if self.kind == "segmentation":
            getattr(self, f"{stage}_slices").update(logits.argmax(1), y)

    def _eval_epoch_end(self, stage: str) -> None:
        collection = getattr(self, f"{stage}_metrics")
        computed = collection.compute()
        collection.reset()
        if self.kind == "segmentation":
            slices = getattr(self, f"{stage}_slices")
            computed.update(slices.compute())
            slices.reset()
        scalars = scalar_metrics(computed, self.class_names)
        self.log_dict({f"{stage}/{k}": v for k, v in scalars.items()}, on_epoch=True, sync_dist=False)
        confmat = computed.get("confmat")
        confmat = None if confmat is None else confmat.cpu().tolist()
        self.last_eval[stage] = {"metrics": scalars, "confmat": confmat}

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            # Sanity batches must not be mistaken for a validation result.
            self.val_metrics.reset()
            if self.kind == "segmentation":
                self.val_slices.reset()
            return
        self._eval_epoch_end("val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self.predict_logits(x).float(), dim=1)

    # ---------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        o = self.optim_cfg
        # No weight decay on norms and biases (the usual practice; it matters for BN nets).
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        # airbench trains BatchNorm biases with a much larger lr (no_decay_lr_scale).
        groups = [
            {"params": decay, "weight_decay": float(o["weight_decay"])},
            {
                "params": no_decay,
                "weight_decay": 0.0,
                "lr": float(o["lr"]) * float(o.get("no_decay_lr_scale", 1.0)),
            },
        ]
        if o["name"] == "sgd":
            opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], nesterov=bool(o["nesterov"]))
        else:
            adam = torch.optim.Adam if o["name"] == "adam" else torch.optim.AdamW
            opt = adam(groups, lr=o["lr"], betas=tuple(o["betas"]))
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = total / max(self.trainer.max_epochs, 1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(self.schedule_cfg, total, per_epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
