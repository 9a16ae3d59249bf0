"""Paired comparisons of a generated source with the reference on the same dialogues (docs/metrics.md,
"Paired comparisons").

Pure module: plain data in, plain data out, no Django. For each score, the input is one pair per dialogue
(generated value, reference value) — the transcripts' final values. The output per score:

* ``n`` pairs, the mean difference (generated − reference) with its 95 % t interval;
* the Wilcoxon signed-rank test (two-sided; zero differences dropped, scipy's ``zero_method="wilcox"``)
  with the matched-pairs rank-biserial correlation as its effect size;
* the paired t-test (two-sided) with Cohen's d_z = mean difference / SD of the differences;
* Holm-adjusted p-values of both tests across the scores of one comparison (the scores a table reports
  form one family).

A statistic that cannot be computed (fewer than 2 pairs, all differences zero, constant differences)
is None with a ``reason``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_PAIRS = 2


@dataclass(frozen=True)
class PairedResult:
    key: str
    n: int
    mean_reference: float | None
    mean_generated: float | None
    mean_difference: float | None
    ci95: tuple[float, float] | None
    wilcoxon_p: float | None
    rank_biserial: float | None
    t_p: float | None
    cohens_dz: float | None
    wilcoxon_p_holm: float | None = None
    t_p_holm: float | None = None
    reason: str = ""


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def compare(key: str, pairs: Sequence[tuple[float, float]]) -> PairedResult:
    """One score: ``pairs`` of (generated, reference) values on the same dialogues."""
    n = len(pairs)
    if n < MIN_PAIRS:
        return PairedResult(key, n, None, None, None, None, None, None, None, None,
                            reason=f"needs at least {MIN_PAIRS} dialogues with both values")
    generated = np.array([p[0] for p in pairs], dtype=float)
    reference = np.array([p[1] for p in pairs], dtype=float)
    diff = generated - reference
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1))
    reasons: list[str] = []
    if sd > 0:
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        ci: tuple[float, float] | None = (mean - half, mean + half)
        t_p = _finite(float(stats.ttest_rel(generated, reference).pvalue))
        dz: float | None = mean / sd
    else:
        ci, t_p, dz = (mean, mean), None, None
        reasons.append("the differences are constant: no t-test or d_z")
    nonzero = diff[diff != 0]
    if nonzero.size:
        w_p = _finite(float(stats.wilcoxon(generated, reference, zero_method="wilcox").pvalue))
        ranks = stats.rankdata(np.abs(nonzero))
        positive, negative = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
        rbc: float | None = (positive - negative) / (positive + negative)
    else:
        w_p, rbc = None, None
        reasons.append("every difference is zero: no Wilcoxon test")
    return PairedResult(
        key, n, float(reference.mean()), float(generated.mean()), mean, ci, w_p, rbc, t_p, dz,
        reason="; ".join(reasons),
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment; None entries stay None and do not count in the family."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_scores(pairs_by_key: Mapping[str, Sequence[tuple[float, float]]]) -> list[PairedResult]:
    """Every score of one comparison, Holm-adjusted across them (keys in the mapping's order)."""
    results = [compare(key, pairs) for key, pairs in pairs_by_key.items()]
    w_holm = holm([r.wilcoxon_p for r in results])
    t_holm = holm([r.t_p for r in results])
    return [
        PairedResult(**{**r.__dict__, "wilcoxon_p_holm": w, "t_p_holm": t})
        for r, w, t in zip(results, w_holm, t_holm, strict=True)
    ]
