"""Statistics of a study: summaries per configuration, paired differences, Holm's correction.

Differences are *paired*: a configuration and its reference trained with the same seed (or on the
same fold) share the data split, initial-weight stream and batch order, so the difference per seed
removes that shared variation. For n pairs with differences d:

- mean and 95% confidence interval ``mean(d) +/- t_{0.975, n-1} * sd(d) / sqrt(n)`` (sd with n - 1);
- the paired t-test (``scipy.stats.ttest_rel``, two-sided) and the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, two-sided, exact for small n). With n = 5 the smallest possible
  two-sided Wilcoxon p is 0.0625: it cannot reach 0.05 however large the effect, which is why the
  t-test is the one corrected and marked;
- Holm's step-down correction over all comparisons of a family (:func:`holm`), controlling the
  family-wise error rate without assuming independence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps


@dataclass
class Summary:
    mean: float
    sd: float | None  # None for n < 2
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PairedComparison:
    n: int
    mean_diff: float
    sd_diff: float | None
    ci_low: float | None
    ci_high: float | None
    t_stat: float | None
    p_ttest: float | None
    p_wilcoxon: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, np.float64)
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of numbers, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"values must be finite, got {a.tolist()}")
    return a


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation (ddof 1; None for one value) and n."""
    a = _finite(values)
    if len(a) == 0:
        raise ValueError("cannot summarise no values")
    return Summary(float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else None, len(a))


def paired(values: Sequence[float], reference: Sequence[float], confidence: float = 0.95) -> PairedComparison:
    """``values[i] - reference[i]`` over pairs (same seed or fold): mean, t-based CI, t and Wilcoxon p."""
    x, r = _finite(values), _finite(reference)
    if len(x) != len(r):
        raise ValueError(f"paired samples differ in length: {len(x)} vs {len(r)}")
    if len(x) == 0:
        raise ValueError("no pairs to compare")
    d = x - r
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return PairedComparison(n, mean, None, None, None, None, None, None)
    sd = float(d.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:
        # Every pair differs by the same amount: no variation to test against. Identical runs
        # (d == 0 everywhere) are no evidence of a difference (p = 1); a constant non-zero shift
        # has no defined t statistic, so no p-value is claimed.
        p = 1.0 if mean == 0.0 else None
        return PairedComparison(n, mean, 0.0, mean, mean, None, p, p)
    t = sps.ttest_rel(x, r)
    p_w = float(sps.wilcoxon(x, r, zero_method="wilcox").pvalue)  # sd > 0: some pair differs
    return PairedComparison(n, mean, sd, mean - half, mean + half, float(t.statistic), float(t.pvalue), p_w)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order.

    ``None`` entries (comparisons without a p-value) are left out of the family and stay None.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):  # type: ignore[arg-type,return-value]
        p = float(pvalues[i])  # type: ignore[arg-type]
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be in [0, 1], got {p}")
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def verdict(comparison: Mapping[str, Any]) -> str:
    """A comparison's outcome after Holm: ``"not tested"`` (no p-value), ``"no difference"``
    (not significant), ``"better"`` or ``"worse"`` (significant, by the metric's direction)."""
    if comparison.get("p_holm") is None:
        return "not tested"
    if not comparison.get("significant"):
        return "no difference"
    return "better" if (comparison["mean_diff"] > 0) == comparison["higher_is_better"] else "worse"
