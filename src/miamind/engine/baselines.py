"""``miamind baseline``: classical scikit-learn classifiers on exactly the flows a network sees.

The data module of the run config builds the split (seeded, stratified, duplicates removed), the
non-finite policy and the scaler fitted on train, as for ``miamind train``; the classifier is
fitted on the training split and scored on the validation and test splits with the same metric
code (``tasks.metrics.flow_metrics``, fed log-probabilities, whose softmax is the classifier's
probability). The run folder gets the same ``metrics.json`` shape as a trained network, so a study
puts both in one table. Hyper-parameters are scikit-learn's defaults (RF with 300 trees, logistic
regression with enough iterations to converge), fixed before any result: nothing is tuned, on
validation or test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..tasks.registry import get_task, task_names
from .build import build_datamodule_for
from .config import Config
from .provenance import record_attempt
from .run_folder import RunError, data_summary, run_identity, write_dataset_files, write_metrics
from .run_lock import run_folder_lock


def _rf(seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=300, n_jobs=1, random_state=seed)


def _hgb(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # early_stopping="auto" holds out 10% of the *training* rows when there are > 10,000 of them
    return HistGradientBoostingClassifier(random_state=seed)


def _logreg(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000, random_state=seed)


def _knn(k: int) -> Callable[[int], Any]:
    def build(seed: int):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=k)

    return build


#: name -> (builder(seed), what it is)
BASELINES: dict[str, tuple[Callable[[int], Any], str]] = {
    "sklearn_rf": (_rf, "random forest, 300 trees"),
    "sklearn_hgb": (_hgb, "histogram gradient boosting (scikit-learn defaults)"),
    "sklearn_logreg": (_logreg, "multinomial logistic regression (L2, C=1)"),
    "sklearn_knn": (_knn(5), "k-nearest neighbours, k=5, Euclidean on the scaled features"),
    "sklearn_1nn": (_knn(1), "1-nearest neighbour, Euclidean on the scaled features"),
}


def _score(clf, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...]) -> dict[str, Any]:
    import torch

    from ..tasks.metrics import flow_metrics, scalar_metrics

    k = len(class_names)
    proba = np.zeros((len(x), k), np.float64)
    proba[:, clf.classes_] = clf.predict_proba(x)  # a class absent from train keeps probability 0
    logits = torch.from_numpy(np.log(np.clip(proba, 1e-12, None))).float()
    collection = flow_metrics(class_names)
    collection.update(logits, torch.from_numpy(y.astype(np.int64)))
    computed = collection.compute()
    return {"metrics": scalar_metrics(computed, class_names), "confmat": computed["confmat"].tolist()}


def train_baseline(cfg: Config, name: str, out: str | Path, *, arrays=None, quiet: bool = False) -> dict:
    """Fit baseline ``name`` on the training split of ``cfg``'s data; write ``out``/metrics.json.

    The run folder is locked while the baseline fits, as for ``miamind train``.
    """
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r} (valid: {', '.join(BASELINES)})")
    with run_folder_lock(out):
        return _train_baseline(cfg, name, out, arrays=arrays, quiet=quiet)


def _train_baseline(cfg: Config, name: str, out: str | Path, *, arrays, quiet: bool) -> dict:
    if not get_task(cfg.task).has_baselines:
        valid = ", ".join(t for t in task_names() if get_task(t).has_baselines)
        raise InputError(f"classical baselines exist for {valid} only, not {cfg.task}")
    run_dir = Path(out)
    if (run_dir / "metrics.json").exists():
        raise RunError(f"{run_dir} already holds a finished run; use another --out")
    import yaml

    from .._atomic import atomic_open

    dm = build_datamodule_for(cfg, arrays)
    dm.setup("fit")
    info = dm.info
    x_train, y_train = dm.split_arrays("train")
    build, what = BASELINES[name]
    clf = build(cfg.seed)
    t0 = time.perf_counter()
    clf.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - t0
    x_val, y_val = dm.split_arrays("val")
    x_test, y_test = dm.split_arrays("test")
    val = _score(clf, x_val, y_val, info.class_names)
    test = _score(clf, x_test, y_test, info.class_names)
    from ..tasks.near_copies import near_copy_report

    # the class _score's metrics count as predicted: the most probable one
    novel, facts = near_copy_report(dm, clf.classes_[clf.predict_proba(x_test).argmax(1)], y_test)
    test["metrics"].update(novel)
    metrics = {
        **run_identity(cfg),
        "model": name,
        "attention": "none",
        "epochs": None,
        "world_size": 1,
        "parameters": None,
        "fit_seconds_this_attempt": round(fit_seconds, 2),
        "train_samples_per_s": round(len(y_train) / fit_seconds, 1) if fit_seconds > 0 else None,
        "monitor": None,
        "best_score": None,
        "evaluated_checkpoint": "final",
        "test_split": get_task(cfg.task).test_split,
        "val_last_epoch": val["metrics"],
        "test": test["metrics"],
        "test_confmat": test["confmat"],
        "class_names": list(info.class_names),
        "baseline": {"name": name, "what": what, "estimator": repr(clf)},
        "data": {**data_summary(dm), **facts},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(run_dir / "baseline.yaml", "w") as f:
        yaml.safe_dump(
            {"baseline": name, "estimator": repr(clf), "config": cfg.model_dump(mode="python")},
            f,
            sort_keys=False,
        )
    write_dataset_files(run_dir, dm)
    record_attempt(run_dir, "start")
    write_metrics(run_dir, metrics)
    if not quiet:
        shown = {
            k: round(v, 4) for k, v in test["metrics"].items() if k in ("acc", "f1_macro", "false_alarm_rate")
        }
        print(f"{name} ({what}): test {shown}")
    return metrics
