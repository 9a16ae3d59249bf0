"""Agreement of one coder with gold: proficiency over calibration codings, drift over seeded ones.

Pure module (docs/calibration.md): plain data in, plain data out, no Django. Every statistic comes from
``evaluation.reliability`` (scikit-learn's Cohen's kappa, the ``krippendorff`` package's alpha,
pingouin-equal ICC(2,1)), with the coder and the gold as the two raters; nothing is re-implemented here
but the share of globals within one point of gold, which is a count.

The same "not estimable" rules hold as everywhere (docs/metrics.md): kappa and alpha need at least
``reliability.MIN_TARGETS`` utterances, ICC that many transcripts. A figure the gold cannot give — globals
when the gold has none (AnnoMI), a code the gold never uses (AnnoMI has no Persuade or Confront) — is
"not estimable" too, with the reason, and the proficiency lists the codes it covers.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from annotation import miti

from . import reliability as irr

Criterion = Literal["met", "below", "not_estimable", "not_required"]

REASON_NO_GOLD_GLOBALS = irr.gettext_noop("the gold transcripts have no global ratings")
REASON_CODE_NOT_IN_GOLD = irr.gettext_noop("the gold transcripts never use this code")
REASON_NO_CALIBRATION = irr.gettext_noop("no submitted calibration coding")
REASONS: tuple[str, ...] = (REASON_NO_GOLD_GLOBALS, REASON_CODE_NOT_IN_GOLD, REASON_NO_CALIBRATION)

# The ICC the gate reads: the summary scores of the manual (MITI 4.2.1, "Summary scores").
GATE_ICC_KEYS: tuple[str, ...] = miti.SUMMARY_KEYS
GLOBAL_SCORE_KEYS = frozenset(("technical", "relational"))


@dataclass(frozen=True)
class GoldComparison:
    """One coder's submitted coding of one gold transcript, paired with the gold, in reading order."""

    assignment_id: int
    coder_id: int
    transcript: str  # blind code
    submitted_at: Any  # datetime; the order of drift
    seeded: bool
    codes: list[tuple[str | None, str]]  # (coder's code, gold code) per utterance
    globals: dict[str, tuple[int | None, int | None]]  # scale -> (coder, gold)
    scores: dict[str, tuple[float | int | None, float | int | None]]  # summary key -> (coder, gold)


@dataclass(frozen=True)
class Thresholds:
    """A study's proficiency standard (None: not required). Defaults and sources: docs/miti.md."""

    min_kappa: float | None = 0.60
    min_alpha: float | None = 0.667
    min_globals_within_one: float | None = 0.80
    min_icc: float | None = None
    drift_kappa: float = 0.60
    drift_window: int = 5


@dataclass(frozen=True)
class CodeKappa:
    code: str
    kappa: irr.KappaResult
    covered: bool  # the gold uses this code at least once
    n_gold: int  # utterances the gold gives this code
    n_coder: int  # utterances the coder gave this code


@dataclass(frozen=True)
class ScoreAgreement:
    key: str
    coder_mean: float | None
    gold_mean: float | None
    mean_abs_difference: float | None
    n: int
    icc: irr.IccResult


@dataclass(frozen=True)
class Check:
    name: str  # kappa | alpha | globals_within_one | icc
    value: float | None
    threshold: float | None
    status: Criterion
    reason: str = ""


@dataclass
class Proficiency:
    coder_id: Hashable
    n_codings: int
    n_utterances: int
    percent_agreement: float | None
    kappa: irr.KappaResult
    alpha: irr.AlphaResult
    per_code: list[CodeKappa]
    covered_codes: list[str]
    globals_within_one: float | None
    n_global_pairs: int
    globals_reason: str
    scores: list[ScoreAgreement]
    checks: list[Check] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return all(c.status in ("met", "not_required") for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """Why not eligible, in English (the pages translate the parts)."""
        out = []
        for c in self.checks:
            if c.status == "below":
                out.append(f"{c.name} {c.value:.2f} below {c.threshold:.2f}")
            elif c.status == "not_estimable":
                out.append(f"{c.name} not estimable ({c.reason})")
        return out


def utterance_agreement(pairs: Sequence[tuple[str | None, str]], *, min_units: int = irr.MIN_TARGETS
                        ) -> tuple[irr.KappaResult, irr.AlphaResult, float | None]:
    """Cohen's kappa and nominal alpha of coder vs gold over utterances, and the share of exact matches."""
    coder = [c for c, _g in pairs]
    gold = [g for _c, g in pairs]
    kappa = irr.cohen_kappa(coder, gold, min_units=min_units)
    alpha = irr.krippendorff_alpha([coder, gold], level="nominal", min_units=min_units)
    both = [(c, g) for c, g in pairs if c is not None]
    percent = sum(c == g for c, g in both) / len(both) if both else None
    return kappa, alpha, percent


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _check(name: str, value: float | None, threshold: float | None, reason: str) -> Check:
    if threshold is None:
        return Check(name, value, None, "not_required")
    if value is None:
        return Check(name, None, threshold, "not_estimable", reason)
    return Check(name, value, threshold, "met" if value >= threshold - 1e-12 else "below")


def proficiency(coder_id: Hashable, comparisons: Sequence[GoldComparison], thresholds: Thresholds, *,
                min_units: int = irr.MIN_TARGETS) -> Proficiency:
    """A coder's agreement with gold over ``comparisons`` (their calibration codings) and the gate's checks."""
    pairs = [p for c in comparisons for p in c.codes]
    kappa, alpha, percent = utterance_agreement(pairs, min_units=min_units)
    per_code: list[CodeKappa] = []
    for code in (*miti.CODE_KEYS, miti.NO_CODE):
        n_gold = sum(g == code for _c, g in pairs)
        n_coder = sum(c == code for c, _g in pairs)
        if n_gold == 0:
            code_kappa = irr.KappaResult(None, len(pairs), "not_estimable", REASON_CODE_NOT_IN_GOLD)
        else:
            code_kappa = irr.cohen_kappa(
                [None if c is None else c == code for c, _g in pairs], [g == code for _c, g in pairs],
                min_units=min_units,
            )
        per_code.append(CodeKappa(code, code_kappa, n_gold > 0, n_gold, n_coder))
    covered = [c.code for c in per_code if c.covered]

    global_pairs = [
        (c, g) for comparison in comparisons for c, g in comparison.globals.values() if c is not None and g is not None
    ]
    within = sum(abs(c - g) <= 1 for c, g in global_pairs) / len(global_pairs) if global_pairs else None
    has_gold_globals = any(g is not None for comparison in comparisons for _c, g in comparison.globals.values())
    globals_reason = "" if global_pairs else irr.reason_text(
        REASON_NO_GOLD_GLOBALS if comparisons and not has_gold_globals else REASON_NO_CALIBRATION
    )

    scores: list[ScoreAgreement] = []
    for key in miti.SUMMARY_KEYS:
        rows = [comparison.scores.get(key, (None, None)) for comparison in comparisons]
        complete = [(float(c), float(g)) for c, g in rows if c is not None and g is not None]
        scores.append(ScoreAgreement(
            key=key, coder_mean=_mean([c for c, _g in complete]), gold_mean=_mean([g for _c, g in complete]),
            mean_abs_difference=_mean([abs(c - g) for c, g in complete]), n=len(complete),
            icc=irr.icc([[c, g] for c, g in rows]),
        ))

    result = Proficiency(
        coder_id=coder_id, n_codings=len(comparisons), n_utterances=len(pairs), percent_agreement=percent,
        kappa=kappa, alpha=alpha, per_code=per_code, covered_codes=covered, globals_within_one=within,
        n_global_pairs=len(global_pairs), globals_reason=globals_reason, scores=scores,
    )
    no_data = irr.reason_text(REASON_NO_CALIBRATION)
    gate_iccs = [s.icc for s in scores if s.key in GATE_ICC_KEYS and (has_gold_globals or s.key not in GLOBAL_SCORE_KEYS)]
    lowest_icc = None if not gate_iccs or any(i.icc2_1 is None for i in gate_iccs) else min(
        i.icc2_1 for i in gate_iccs if i.icc2_1 is not None
    )
    icc_reason = next((i.reason or i.status.replace("_", " ") for i in gate_iccs if i.icc2_1 is None), no_data)
    result.checks = [
        _check("kappa", kappa.kappa, thresholds.min_kappa, kappa.reason or no_data),
        _check("alpha", alpha.alpha, thresholds.min_alpha, alpha.reason or no_data),
        _check("globals_within_one", within, thresholds.min_globals_within_one, globals_reason),
        _check("icc", lowest_icc, thresholds.min_icc, icc_reason),
    ]
    return result


@dataclass(frozen=True)
class DriftPoint:
    number: int  # 1-based: the coder's n-th seeded gold coding
    submitted_at: Any
    transcript: str
    kappa: irr.KappaResult  # this coding alone
    rolling: irr.KappaResult  # pooled over the last ``window`` codings (fewer at the start)
    window_full: bool


@dataclass(frozen=True)
class DriftSeries:
    coder_id: Hashable
    points: list[DriftPoint]
    threshold: float
    window: int

    @property
    def latest(self) -> DriftPoint | None:
        return self.points[-1] if self.points else None

    @property
    def alert(self) -> bool:
        """The rolling kappa over the last ``window`` seeded codings is estimable and below the threshold."""
        last = self.latest
        return bool(last and last.window_full and last.rolling.kappa is not None and last.rolling.kappa < self.threshold)


def drift_series(coder_id: Hashable, seeded: Sequence[GoldComparison], *, threshold: float, window: int,
                 min_units: int = irr.MIN_TARGETS) -> DriftSeries:
    """Per-utterance kappa with gold of each seeded coding, and over the last ``window`` of them, in time order."""
    ordered = sorted(seeded, key=lambda c: (c.submitted_at is None, c.submitted_at, c.assignment_id))
    points = []
    for i, comparison in enumerate(ordered):
        recent = ordered[max(0, i - window + 1): i + 1]
        pooled = [p for c in recent for p in c.codes]
        points.append(DriftPoint(
            number=i + 1, submitted_at=comparison.submitted_at, transcript=comparison.transcript,
            kappa=irr.cohen_kappa([c for c, _g in comparison.codes], [g for _c, g in comparison.codes],
                                  min_units=min_units),
            rolling=irr.cohen_kappa([c for c, _g in pooled], [g for _c, g in pooled], min_units=min_units),
            window_full=len(recent) == window,
        ))
    return DriftSeries(coder_id, points, threshold, window)
