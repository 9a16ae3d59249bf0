"""Calibration results, proficiency and drift of a study's coders, read from the database.

Loads every submitted coding of a gold transcript (calibration rounds and seeded drift checks) with its
gold version, in a handful of bulk queries, and hands them to the pure ``evaluation.gold_agreement``.
It also answers the proficiency gate of round creation (``annotation.proficiency``: registered by
``evaluation.apps``), so the gate and the proficiency page read the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from annotation import miti, tally
from annotation.models import (
    Assignment,
    GlobalRating,
    GoldAssignment,
    GoldCode,
    GoldRating,
    ProficiencyStandard,
    Study,
    Utterance,
    UtteranceCode,
)
from annotation.proficiency import Verdict

from . import gold_agreement as ga


def thresholds_for(study: Study) -> ga.Thresholds:
    standard = ProficiencyStandard.objects.filter(study=study).first()
    if standard is None:
        return ga.Thresholds()
    return ga.Thresholds(
        min_kappa=standard.min_kappa, min_alpha=standard.min_alpha,
        min_globals_within_one=standard.min_globals_within_one, min_icc=standard.min_icc,
        drift_kappa=standard.drift_kappa, drift_window=standard.drift_window,
    )


def load_comparisons(study: Study, *, coder_ids: Sequence[int] | None = None, assignment_ids: Sequence[int] | None = None
                     ) -> list[ga.GoldComparison]:
    """Every submitted coding of a gold transcript in ``study`` (optionally some coders or assignments)."""
    links = GoldAssignment.objects.filter(
        assignment__coding_round__study=study, assignment__status=Assignment.Status.SUBMITTED
    )
    if coder_ids is not None:
        links = links.filter(assignment__coder_id__in=coder_ids)
    if assignment_ids is not None:
        links = links.filter(assignment_id__in=assignment_ids)
    rows = list(links.values_list(
        "assignment_id", "assignment__coder_id", "assignment__transcript__blind_code", "assignment__submitted_at",
        "seeded", "gold_id", "assignment__transcript_id", "assignment__coding_round__globals_rated", "gold__scores",
    ))
    if not rows:
        return []
    assignment_ids = [r[0] for r in rows]
    gold_ids = {r[5] for r in rows}
    transcript_ids = {r[6] for r in rows}
    order: dict[int, list[int]] = defaultdict(list)
    for pk, transcript_id in (
        Utterance.objects.filter(volley__transcript_id__in=transcript_ids)
        .order_by("volley__transcript_id", "volley__index", "index").values_list("pk", "volley__transcript_id")
    ):
        order[transcript_id].append(pk)
    coder_codes: dict[int, dict[int, str]] = defaultdict(dict)
    code_rows = list(
        UtteranceCode.objects.filter(assignment_id__in=assignment_ids)
        .values_list("assignment_id", "utterance_id", "utterance__volley_id", "code")
    )
    for a, u, _v, c in code_rows:
        coder_codes[a][u] = c
    counts, _n = tally.tally_rows(code_rows)
    gold_codes: dict[int, dict[int, str]] = defaultdict(dict)
    for g, u, c in GoldCode.objects.filter(gold_id__in=gold_ids, additional=False).values_list("gold_id", "utterance_id", "code"):
        gold_codes[g][u] = c
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for a, s, v in GlobalRating.objects.filter(assignment_id__in=assignment_ids).values_list("assignment_id", "scale", "value"):
        ratings[a][s] = v
    gold_ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for g, s, v in GoldRating.objects.filter(gold_id__in=gold_ids).values_list("gold_id", "scale", "value"):
        gold_ratings[g][s] = v
    out = []
    for a, coder_id, blind, submitted_at, seeded, gold_id, transcript_id, rated, gold_scores in rows:
        _c, _g, scores = tally.summarise(counts.get(a), ratings.get(a, {}), globals_rated=rated)
        out.append(ga.GoldComparison(
            assignment_id=a, coder_id=coder_id, transcript=blind, submitted_at=submitted_at, seeded=seeded,
            codes=[(coder_codes[a].get(u), gold_codes[gold_id][u]) for u in order[transcript_id] if u in gold_codes[gold_id]],
            globals={k: (ratings[a].get(k) if rated else None, gold_ratings[gold_id].get(k)) for k in miti.GLOBAL_KEYS},
            scores={k: (scores.get(k), gold_scores.get(k)) for k in miti.SUMMARY_KEYS},
        ))
    return out


@dataclass
class StudyCalibration:
    thresholds: ga.Thresholds
    coders: dict[int, str]
    proficiency: dict[int, ga.Proficiency]
    drift: dict[int, ga.DriftSeries]

    @property
    def alerts(self) -> list[int]:
        return [c for c, series in self.drift.items() if series.alert]


def study_calibration(study: Study, *, coder_ids: Sequence[int] | None = None) -> StudyCalibration:
    """Proficiency (calibration codings) and drift (seeded codings) of every coder with gold codings,
    and of ``coder_ids`` even without any."""
    from django.contrib.auth import get_user_model

    thresholds = thresholds_for(study)
    comparisons = load_comparisons(study, coder_ids=coder_ids)
    ids = set(coder_ids or ()) | {c.coder_id for c in comparisons}
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    ordered = sorted(ids, key=lambda c: names.get(c, ""))
    by_coder: dict[int, list[ga.GoldComparison]] = defaultdict(list)
    for c in comparisons:
        by_coder[c.coder_id].append(c)
    proficiency = {
        c: ga.proficiency(c, [x for x in by_coder[c] if not x.seeded], thresholds) for c in ordered
    }
    drift = {
        c: ga.drift_series(c, [x for x in by_coder[c] if x.seeded], threshold=thresholds.drift_kappa,
                           window=thresholds.drift_window)
        for c in ordered if any(x.seeded for x in by_coder[c])
    }
    return StudyCalibration(thresholds, {c: names.get(c, str(c)) for c in ordered}, proficiency, drift)


def assess(study: object, user_ids: Sequence[int]) -> dict[int, Verdict]:
    """The proficiency gate (``annotation.proficiency``): eligible when every required check is met."""
    assert isinstance(study, Study)
    result = study_calibration(study, coder_ids=list(user_ids))
    out = {}
    for c in user_ids:
        p = result.proficiency[c]
        failed = [
            {"name": k.name, "status": k.status, "value": k.value, "threshold": k.threshold, "reason": k.reason}
            for k in p.checks if k.status in ("below", "not_estimable")
        ]
        out[c] = Verdict(p.eligible, p.reasons, failed)
    return out


def feedback_agreement(pairs: Sequence[tuple[str | None, str]]) -> dict[str, float | None | str]:
    """Kappa and alpha of one calibration coding with its gold, for the coder's feedback panel."""
    kappa, alpha, percent = ga.utterance_agreement(pairs)
    # The reasons in the page's language: the coder's page shows them as they are (annotation cannot
    # translate the reliability module's reasons).
    from .reasons import translate_reason

    return {"kappa": kappa.kappa, "kappa_reason": translate_reason(kappa.reason), "alpha": alpha.alpha,
            "alpha_reason": translate_reason(alpha.reason),
            "percent": percent}
