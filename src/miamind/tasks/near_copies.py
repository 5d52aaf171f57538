"""Test rows with a near-copy among the training rows, and the macro-F1 on the rest.

Exact duplicates are removed before the flow data sets are split, but many CIC-IDS2017 flows of
one attack differ from another only in a timing field: after scaling, 15-19% of the test rows lie
within Euclidean distance 1e-3 of a training row (``miamind bench near-duplicates``). That favours
models that memorise. ``f1_macro_novel`` is the macro-F1 on the test rows with no training row
within :data:`NEAR_COPY_THRESHOLD`: the same metric as ``f1_macro`` (torchmetrics, macro over the
task's classes) on the rows a model cannot have seen in near-identical form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Euclidean distance, after the training split's scaling, under which a test row is a near-copy
NEAR_COPY_THRESHOLD = 1e-3


def near_copy_mask(
    x_train: np.ndarray, x_test: np.ndarray, threshold: float = NEAR_COPY_THRESHOLD
) -> np.ndarray:
    """True for each test row with a training row within ``threshold`` (Euclidean)."""
    from sklearn.neighbors import NearestNeighbors

    x_train = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    x_test = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    distance, _ = NearestNeighbors(n_neighbors=1).fit(x_train).kneighbors(x_test)
    return distance[:, 0] <= threshold


def novel_metrics(
    preds: np.ndarray, target: np.ndarray, num_classes: int, near: np.ndarray
) -> dict[str, Any]:
    """``f1_macro_novel`` over the rows that are not near-copies (None when every row is one)."""
    import torch
    from torchmetrics.functional.classification import multiclass_f1_score

    keep = ~np.asarray(near, bool)
    f1 = None
    if keep.any():
        f1 = float(
            multiclass_f1_score(
                torch.as_tensor(np.asarray(preds)[keep]),
                torch.as_tensor(np.asarray(target)[keep]),
                num_classes=num_classes,
                average="macro",
            )
        )
    return {"f1_macro_novel": f1}


def network_predictions(module, dm, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, target) of every row of the whole test split, in its order, with the
    evaluation forward of the test (not the loader: under DDP each rank's loader holds a shard)."""
    import torch

    x_test, y_test = dm.split_arrays("test")
    x = torch.as_tensor(x_test).reshape(len(x_test), *dm.info.input_shape)
    import contextlib

    trainer = getattr(module, "_trainer", None)
    # the test's precision (bf16 autocast when the run trains in bf16)
    precision = (
        trainer.precision_plugin.forward_context() if trainer is not None else contextlib.nullcontext()
    )
    preds = []
    module.eval()
    with torch.no_grad(), precision:
        for start in range(0, len(x), batch_size):
            logits = module.predict_logits(x[start : start + batch_size].to(module.device))
            preds.append(logits.argmax(1).cpu())
    return torch.cat(preds).numpy(), y_test


def near_copy_report(dm, preds: np.ndarray, targets: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test metrics, data facts) of a flow data module's test split, given the predictions for its
    rows in order (``targets``: the labels they were made for, to check that order)."""
    x_train, _ = dm.split_arrays("train")
    x_test, y_test = dm.split_arrays("test")
    if not np.array_equal(np.asarray(targets), y_test):
        raise RuntimeError("test predictions are not in the order of the test split")
    near = near_copy_mask(x_train, x_test)
    metrics = novel_metrics(preds, y_test, len(dm.info.class_names), near)
    data = {
        "test_near_copies": int(near.sum()),
        "test_rows": int(len(near)),
        "near_copy_threshold": NEAR_COPY_THRESHOLD,
    }
    return metrics, data
