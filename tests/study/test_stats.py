"""Known answers for the study statistics (hand-computed, scipy used only where stated)."""

import math

import pytest

from miamind.study.stats import holm, paired, summarize


def test_summarize_mean_sample_sd_and_n():
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s.mean == 5.0 and s.n == 8
    assert s.sd == pytest.approx(math.sqrt(32 / 7))  # sum of squares 32, n - 1 = 7
    one = summarize([0.3])
    assert one.mean == 0.3 and one.sd is None and one.n == 1
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_paired_difference_ci_and_tests_by_hand():
    # d = 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), se sqrt(0.5); t = 3 / sqrt(0.5) = 4.2426 (df 4),
    # t_{0.975, 4} = 2.776445 -> half width 1.963243; two-sided p of t = 4.2426, df 4 = 0.013236.
    # Wilcoxon: all 5 differences positive, exact two-sided p = 2 / 2^5 = 0.0625.
    ref = [10.0, 10.0, 10.0, 10.0, 10.0]
    c = paired([11.0, 12.0, 13.0, 14.0, 15.0], ref)
    assert c.n == 5 and c.mean_diff == pytest.approx(3.0)
    assert c.sd_diff == pytest.approx(math.sqrt(2.5))
    assert c.ci_low == pytest.approx(3 - 1.963243, abs=1e-6)
    assert c.ci_high == pytest.approx(3 + 1.963243, abs=1e-6)
    assert c.t_stat == pytest.approx(4.242641, abs=1e-6)
    assert c.p_ttest == pytest.approx(0.013236, abs=1e-6)
    assert c.p_wilcoxon == pytest.approx(0.0625)


def test_paired_is_paired_not_two_sample():
    # Large spread between seeds, constant +0.01 shift plus small noise: a paired test sees it.
    ref = [0.50, 0.70, 0.90, 0.60, 0.80]
    x = [0.511, 0.709, 0.912, 0.608, 0.810]
    c = paired(x, ref)
    assert c.mean_diff == pytest.approx(0.01)
    assert c.p_ttest < 0.001


def test_paired_degenerate_cases():
    same = paired([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert same.mean_diff == 0 and same.p_ttest == 1.0 and same.p_wilcoxon == 1.0
    shift = paired([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])  # constant difference: no t statistic
    assert shift.mean_diff == pytest.approx(0.5) and shift.p_ttest is None and shift.ci_low == shift.ci_high
    single = paired([1.0], [0.0])
    assert single.n == 1 and single.ci_low is None and single.p_ttest is None
    with pytest.raises(ValueError, match="length"):
        paired([1.0, 2.0], [1.0])


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, None, 0.02])  # None is outside the family (m = 2)
    assert out[1] is None and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([1.5])
