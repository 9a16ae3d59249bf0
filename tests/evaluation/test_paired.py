"""Paired comparisons (evaluation.paired) against pingouin on literal data."""

from __future__ import annotations

import numpy as np
import pingouin as pg
import pytest

from evaluation import paired

GENERATED = [3.5, 2.0, 4.0, 3.0, 2.5, 4.5, 3.0, 1.5, 3.5, 4.0, 2.0, 3.0]
REFERENCE = [3.0, 3.0, 3.5, 3.0, 3.5, 4.0, 4.0, 2.5, 3.0, 4.5, 3.0, 3.5]


def _col(frame, *names):
    """A pingouin result column under its 0.7 name or its older one ("p_val"/"p-val", "CI95"/"CI95%")."""
    name = next(n for n in names if n in frame.columns)
    return frame[name].iloc[0]


def test_one_score_equals_pingouin_wilcoxon_and_paired_t() -> None:
    result = paired.compare("empathy", list(zip(GENERATED, REFERENCE, strict=True)))
    diff = np.array(GENERATED) - np.array(REFERENCE)
    wilcoxon = pg.wilcoxon(GENERATED, REFERENCE)
    ttest = pg.ttest(GENERATED, REFERENCE, paired=True)
    assert result.n == 12
    assert result.mean_difference == pytest.approx(diff.mean())
    assert result.wilcoxon_p == pytest.approx(_col(wilcoxon, "p_val", "p-val"))
    assert result.rank_biserial == pytest.approx(wilcoxon["RBC"].iloc[0])
    assert result.t_p == pytest.approx(_col(ttest, "p_val", "p-val"))
    low, high = _col(ttest, "CI95", "CI95%")
    assert result.ci95 == pytest.approx((low, high), abs=0.006)  # pingouin rounds its interval to 2 decimals
    assert result.cohens_dz == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert result.reason == ""


def test_holm_across_scores_equals_pingouin_multicomp() -> None:
    rng = np.random.default_rng(3)
    pairs = {
        key: [(float(g), float(r)) for g, r in zip(rng.normal(shift, 1, 15).round(1), rng.normal(0, 1, 15).round(1), strict=True)]
        for key, shift in (("a", 0.0), ("b", 0.8), ("c", 1.5), ("d", 0.3))
    }
    results = paired.compare_scores(pairs)
    _reject, expected_w = pg.multicomp([r.wilcoxon_p for r in results], method="holm")
    _reject, expected_t = pg.multicomp([r.t_p for r in results], method="holm")
    assert [r.wilcoxon_p_holm for r in results] == pytest.approx(list(expected_w))
    assert [r.t_p_holm for r in results] == pytest.approx(list(expected_t))
    assert [r.key for r in results] == ["a", "b", "c", "d"]


def test_degenerate_pairs_say_why() -> None:
    assert paired.compare("x", [(1.0, 2.0)]).reason.startswith("needs at least 2")
    same = paired.compare("x", [(3.0, 3.0), (4.0, 4.0), (2.0, 2.0)])
    assert same.wilcoxon_p is None and same.t_p is None and same.mean_difference == 0.0
    assert "every difference is zero" in same.reason and "constant" in same.reason
    assert paired.holm([0.01, None, 0.04]) == [0.02, None, 0.04]
