"""Metrics checked against values worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAUROC
from torchmetrics.segmentation import DiceScore

from miamind.tasks.metrics import (
    SliceRandVI,
    flow_metrics,
    image_metrics,
    sanitize_class_name,
    scalar_metrics,
    segmentation_metrics,
)


def logits_for(pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits whose argmax over dim 1 is ``pred`` (class axis moved to dim 1 for maps)."""
    one_hot = F.one_hot(pred, num_classes).float() * 4.0 - 2.0
    return one_hot.movedim(-1, 1)


def assert_close(actual, expected) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        rtol=0,
        atol=1e-6,
    )


# ------------------------------------------------------------------------------ image
def test_image_metrics_accuracy_per_class_and_confmat_orientation():
    target = torch.tensor([0, 0, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 2, 0])
    metrics = image_metrics(("cat", "dog", "bird"))
    metrics.update(logits_for(pred, 3), target)
    out = metrics.compute()
    assert set(out) == {"acc", "acc_per_class", "confmat"}
    assert_close(out["acc"], 3 / 5)
    assert_close(out["acc_per_class"], [1 / 2, 1 / 1, 1 / 2])
    # rows = target, columns = prediction: one cat called a dog, one bird called a cat.
    assert out["confmat"].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


# ------------------------------------------------------------------------------ flows
def test_flow_metrics_binary_scores_use_positive_class_one():
    # 6 benign (class 0): one called attack. 4 attacks (class 1): two detected, two missed.
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    # Score = logit of attack with benign logit 0, so P(attack) = sigmoid(score).
    score = torch.tensor([-3.0, -2.0, -1.0, -0.5, -0.2, 0.5, 2.0, 1.0, -0.1, -4.0])
    logits = torch.stack([torch.zeros_like(score), score], dim=1)
    metrics = flow_metrics(("BENIGN", "attack"))
    # Two batches: torchmetrics forms compute groups after the first update; must stay correct.
    metrics.update(logits[:4], target[:4])
    metrics.update(logits[4:], target[4:])
    out = metrics.compute()
    assert set(out) == {
        "acc",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "auroc",
        "acc_per_class",
        "precision_per_class",
        "recall_per_class",
        "f1_per_class",
        "false_alarm_rate",
        "confmat",
    }
    assert_close(out["acc"], 7 / 10)
    # attack: TP 2, FP 1, FN 2
    assert_close(out["precision"], 2 / 3)
    assert_close(out["recall"], 2 / 4)
    assert_close(out["f1"], 4 / 7)
    # benign: precision 5/7, recall 5/6, F1 10/13 -> macro averages differ from the binary ones
    assert_close(out["precision_macro"], (5 / 7 + 2 / 3) / 2)
    assert_close(out["recall_macro"], (5 / 6 + 2 / 4) / 2)
    assert_close(out["f1_macro"], (10 / 13 + 4 / 7) / 2)
    assert not math.isclose(float(out["precision"]), float(out["precision_macro"]), abs_tol=1e-3)
    # Pairs (attack, benign) ranked right: 2.0 and 1.0 beat all 6, -0.1 beats 5, -4.0 none.
    assert_close(out["auroc"], 17 / 24)
    assert_close(out["acc_per_class"], [5 / 6, 2 / 4])
    assert_close(out["precision_per_class"], [5 / 7, 2 / 3])
    assert_close(out["recall_per_class"], [5 / 6, 2 / 4])
    assert_close(out["f1_per_class"], [10 / 13, 4 / 7])
    # one of the 6 benign flows raised an alarm
    assert_close(out["false_alarm_rate"], 1 / 6)
    assert out["confmat"].tolist() == [[5, 1], [2, 2]]


def test_flow_metrics_multiclass_are_macro_and_auroc_uses_softmax():
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    # Logits inside [0, 1]: torchmetrics would rank these raw values (macro AUROC 0.79); over
    # softmax probabilities every class separates perfectly.
    logits = torch.tensor(
        [
            [0.10, 0.15, 0.10],
            [0.46, 0.93, 0.49],
            [0.01, 0.41, 0.24],
            [0.23, 0.43, 0.22],
            [0.09, 0.86, 0.02],
            [0.01, 0.27, 0.18],
        ]
    )
    assert float(MulticlassAUROC(num_classes=3, average="macro")(logits, target)) < 0.8
    metrics = flow_metrics(("benign", "dos", "portscan"))
    metrics.update(logits, target)
    out = metrics.compute()
    assert_close(out["auroc"], 1.0)
    # argmax: [1, 1, 1, 1, 1, 1] -> only class 1 predicted
    for key in ("precision", "recall", "f1"):
        assert_close(out[key], out[f"{key}_macro"])
    assert_close(out["recall"], (0 + 1 + 0) / 3)
    assert_close(out["precision"], (0 + 2 / 6 + 0) / 3)
    # every benign row is predicted dos: all of them are false alarms
    assert_close(out["false_alarm_rate"], 1.0)
    assert_close(out["f1_per_class"], [0.0, 2 * (2 / 6) / (2 / 6 + 1), 0.0])


def test_false_alarm_rate_counts_benign_rows_called_any_attack_and_is_absent_without_benign():
    metrics = flow_metrics(("dos", "BENIGN", "portscan"))
    target = torch.tensor([1, 1, 1, 1, 0, 2])
    pred = torch.tensor([1, 0, 2, 1, 0, 1])  # benign rows: 2 of 4 flagged (as dos, as portscan)
    metrics.update(torch.nn.functional.one_hot(pred, 3).float(), target)
    assert_close(metrics.compute()["false_alarm_rate"], 2 / 4)
    assert "false_alarm_rate" not in flow_metrics(("dos", "portscan"))


# ------------------------------------------------------------------------------ segmentation
def test_segmentation_dice_iou_pixel_acc_are_global_over_pixels():
    target = torch.tensor([[[0, 0, 1], [1, 1, 1]], [[0, 0, 0], [0, 0, 1]]])
    pred = torch.tensor([[[0, 1, 1], [1, 1, 1]], [[0, 0, 0], [0, 1, 0]]])
    metrics = segmentation_metrics(("membrane", "cell"))
    metrics.update(logits_for(pred, 2), target)
    out = metrics.compute()
    # cell: image 1 TP 4 FP 1 FN 0 (Dice 8/9), image 2 TP 0 FP 1 FN 1 (Dice 0)
    # global: TP 4 FP 2 FN 1 -> Dice 8/11; per-image mean would be 4/9.
    # membrane: global TP 5 FP 1 FN 2 -> Dice 10/13.
    assert_close(out["dice"], [10 / 13, 8 / 11])
    assert_close(out["iou"], [5 / 8, 4 / 7])
    assert_close(out["pixel_acc"], 9 / 12)
    # Same numbers as torchmetrics' segmentation DiceScore with global aggregation; its default
    # (samplewise) averages per image, which is not what we report.
    dice_global = DiceScore(num_classes=2, average="none", aggregation_level="global", input_format="index")
    assert_close(dice_global(pred, target), out["dice"])
    dice_per_image = DiceScore(
        num_classes=2, average="none", aggregation_level="samplewise", input_format="index"
    )
    assert_close(dice_per_image(pred, target)[1], (8 / 9 + 0) / 2)


def test_segmentation_metrics_accumulate_across_updates():
    target = torch.tensor([[[0, 0, 1], [1, 1, 1]], [[0, 0, 0], [0, 0, 1]]])
    pred = torch.tensor([[[0, 1, 1], [1, 1, 1]], [[0, 0, 0], [0, 1, 0]]])
    metrics = segmentation_metrics(("membrane", "cell"))
    metrics.update(logits_for(pred[:1], 2), target[:1])
    metrics.update(logits_for(pred[1:], 2), target[1:])
    assert_close(metrics.compute()["dice"], [10 / 13, 8 / 11])


# ------------------------------------------------------------------------------ ISBI slices
def two_cells() -> torch.Tensor:
    """A 7x9 slice: two 7x4 cells (class 1) left and right of a membrane column (class 0)."""
    slice_ = torch.ones(1, 7, 9, dtype=torch.long)
    slice_[:, :, 4] = 0
    return slice_


def test_slice_rand_vi_perfect_prediction_scores_zero():
    target = two_cells()
    metric = SliceRandVI()
    metric.update(target.clone(), target)
    out = metric.compute()
    assert set(out) == {"adapted_rand_error", "vi_split", "vi_merge", "vi"}
    for value in out.values():
        assert value.ndim == 0
        assert_close(value, 0.0)


def test_slice_rand_vi_merge_through_removed_membrane():
    target = two_cells()
    pred = target.clone()
    pred[0, 3, 4] = 1  # a gap in the membrane joins both cells into one segment
    metric = SliceRandVI()
    metric.update(pred, target)
    out = metric.compute()
    # Ground-truth pairs within a cell: 2 * 28*27 = 1512. The prediction puts all 56 ground-truth
    # cell pixels (the gap pixel is ground-truth membrane, ignored) in one segment: 56*55 = 3080
    # pairs, 1512 of them correct. Rand F-score = 1512 / (0.5*3080 + 0.5*1512).
    assert_close(out["adapted_rand_error"], 1 - 1512 / 2296)
    # Knowing the predicted segment leaves one fair bit: which of two equal cells. Nothing split.
    assert_close(out["vi_merge"], 1.0)
    assert_close(out["vi_split"], 0.0)
    assert_close(out["vi"], 1.0)


def test_slice_rand_vi_split_cell():
    target = two_cells()
    pred = target.clone()
    pred[0, 3, :4] = 0  # a false membrane cuts the left cell in two
    metric = SliceRandVI()
    metric.update(pred, target)
    out = metric.compute()
    assert float(out["adapted_rand_error"]) > 0
    assert float(out["vi_split"]) > 0.5
    assert_close(out["vi_merge"], 0.0)


def test_slice_rand_vi_predicted_membrane_pixels_are_singletons():
    target = torch.ones(1, 4, 4, dtype=torch.long)  # one cell, no membrane
    pred = target.clone()
    pred[0, 0, 0] = pred[0, 3, 3] = 0  # two stray membrane pixels, not touching
    metric = SliceRandVI()
    metric.update(pred, target)
    # Truth: 16*15 = 240 pairs. Prediction: segments of 14, 1, 1 -> 14*13 = 182 pairs, all right.
    # F = 182 / (0.5*182 + 0.5*240) -> error 29/211. (One shared label for the two stray pixels
    # would give 28/212.)
    assert_close(metric.compute()["adapted_rand_error"], 29 / 211)


def test_slice_rand_vi_means_over_slices_across_updates_and_ranks():
    target = two_cells()
    merged = target.clone()
    merged[0, 3, 4] = 1
    are_merged = 1 - 1512 / 2296
    metric = SliceRandVI()
    metric.update(target.clone(), target)
    metric.update(torch.cat([merged, merged]), torch.cat([target, target]))
    out = metric.compute()
    assert_close(out["adapted_rand_error"], 2 * are_merged / 3)
    assert_close(out["vi_merge"], 2 / 3)
    # Two "ranks", one slice each: their states concatenate as under DDP (cat reduction).
    rank0, rank1 = SliceRandVI(), SliceRandVI()
    rank0.update(merged, target)
    rank1.update(target.clone(), target)
    rank0.merge_state(rank1)
    assert_close(rank0.compute()["adapted_rand_error"], are_merged / 2)
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(metric.compute()["vi"]))


def test_slice_rand_vi_skips_slices_without_ground_truth_cells():
    target = two_cells()
    empty = torch.zeros_like(target)
    metric = SliceRandVI()
    metric.update(torch.cat([target, empty]), torch.cat([target, empty]))
    assert_close(metric.compute()["adapted_rand_error"], 0.0)


def test_slice_rand_vi_rejects_bad_inputs():
    metric = SliceRandVI()
    with pytest.raises(ValueError, match=r"\(2, 5, 5\).*\(2, 5, 4\)"):
        metric.update(torch.zeros(2, 5, 5, dtype=torch.long), torch.zeros(2, 5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class maps"):
        metric.update(torch.zeros(1, 5, 5), torch.zeros(1, 5, 5, dtype=torch.long))


# ------------------------------------------------------------------------------ flattening
def test_sanitize_class_name():
    assert sanitize_class_name("BENIGN") == "benign"
    assert sanitize_class_name("Web Attack \u2013 Brute Force") == "web_attack_brute_force"
    assert sanitize_class_name("  DoS/DDoS ") == "dos_ddos"
    with pytest.raises(ValueError):
        sanitize_class_name("--")


def test_scalar_metrics_names_and_drops_confmat():
    names = ("BENIGN", "attack")
    metrics = flow_metrics(names)
    metrics.update(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 1, 0]))
    computed = metrics.compute()
    computed.update({"slices": {"adapted_rand_error": torch.tensor(0.25, dtype=torch.float64)}})
    scalars = scalar_metrics(computed, names)
    assert set(scalars) == {
        "acc",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "auroc",
        "acc_per_class_benign",
        "acc_per_class_attack",
        "precision_per_class_benign",
        "precision_per_class_attack",
        "recall_per_class_benign",
        "recall_per_class_attack",
        "f1_per_class_benign",
        "f1_per_class_attack",
        "false_alarm_rate",
        "adapted_rand_error",
    }
    assert all(type(v) is float for v in scalars.values())
    assert scalars["acc_per_class_benign"] == pytest.approx(1 / 2)
    assert scalars["acc_per_class_attack"] == pytest.approx(1.0)
    assert scalars["adapted_rand_error"] == 0.25
    assert "confmat" in computed  # still there for the caller


def test_scalar_metrics_rejects_wrong_shapes_and_colliding_names():
    with pytest.raises(ValueError, match="dice.*\\(3,\\)"):
        scalar_metrics({"dice": torch.zeros(3)}, ("membrane", "cell"))
    with pytest.raises(ValueError, match="collide"):
        scalar_metrics({"acc": torch.tensor(1.0)}, ("Port Scan", "port-scan"))
    with pytest.raises(ValueError, match="twice"):
        scalar_metrics({"vi": torch.tensor(1.0), "slices": {"vi": torch.tensor(2.0)}}, ("a", "b"))
