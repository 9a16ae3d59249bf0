"""Feedback of a calibration coding: the coder's codes beside the gold, per utterance and volley.

Shown only in a calibration round and only once the coding is submitted (:func:`feedback_for` answers
None otherwise): a study round — a seeded gold transcript included — never carries feedback, on any
page, partial or API answer (docs/calibration.md). Kappa and alpha come through the evaluation app's
seam (``annotation.proficiency.agreement``), so no statistic is computed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import miti, proficiency
from ..models import Assignment, CodingRound, GlobalRating, GoldCode, GoldRating, GoldTranscript
from .coding import volley_rows


@dataclass(frozen=True)
class UtteranceFeedback:
    id: int  # coder-facing number
    text: str
    code: str | None
    gold: str
    additional: tuple[str, ...]  # further behaviours the gold flags (imported labels)

    @property
    def agrees(self) -> bool:
        return self.code == self.gold


@dataclass(frozen=True)
class VolleyFeedback:
    number: int
    utterances: list[UtteranceFeedback]
    counted: list[str]  # the coder's per-volley tally (codes counted once)
    gold_counted: list[str]


@dataclass(frozen=True)
class GlobalFeedback:
    key: str
    value: int | None
    gold: int | None

    @property
    def within_one(self) -> bool | None:
        return None if self.value is None or self.gold is None else abs(self.value - self.gold) <= 1


@dataclass(frozen=True)
class Feedback:
    volleys: list[VolleyFeedback]
    globals: list[GlobalFeedback]
    gold_has_globals: bool
    agreed: int
    total: int
    agreement: dict | None  # kappa, alpha, percent (+ reasons) from the evaluation app
    codes_used: list[str]  # codes in the coder's or the gold's column, for the definitions

    @property
    def percent(self) -> int:
        return round(100 * self.agreed / self.total) if self.total else 0


def _tally(codes: list[str]) -> list[str]:
    counts = miti.tally_volley(codes).counts
    return [key for key in miti.CODE_KEYS if counts.get(key)]


def feedback_for(assignment: Assignment) -> Feedback | None:
    """The coder's feedback, or None when this coding gets none (not calibration, not submitted, no gold)."""
    if assignment.coding_round.purpose != CodingRound.Purpose.CALIBRATION:
        return None
    if assignment.status != Assignment.Status.SUBMITTED:
        return None
    gold = GoldTranscript.objects.filter(uses__assignment=assignment, uses__seeded=False).first()
    if gold is None:
        return None
    main: dict[int, str] = {}
    extra: dict[int, list[str]] = {}
    for utterance_id, code, additional in GoldCode.objects.filter(gold=gold).values_list("utterance_id", "code", "additional"):
        if additional:
            extra.setdefault(utterance_id, []).append(code)
        else:
            main[utterance_id] = code
    volleys = []
    for row in volley_rows(assignment):
        utterances = [
            UtteranceFeedback(u.id, u.text, u.code, main.get(u.pk, miti.NO_CODE), tuple(sorted(extra.get(u.pk, ()))))
            for u in row.utterances
        ]
        gold_codes = [u.gold for u in utterances] + [c for u in utterances for c in u.additional]
        volleys.append(VolleyFeedback(row.number, utterances, row.counted, _tally(gold_codes)))
    ratings = dict(GlobalRating.objects.filter(assignment=assignment).values_list("scale", "value"))
    gold_ratings = dict(GoldRating.objects.filter(gold=gold).values_list("scale", "value"))
    pairs = [(u.code, u.gold) for v in volleys for u in v.utterances]
    used = {c for c, g in pairs for c in (c, g) if c} | {c for v in volleys for u in v.utterances for c in u.additional}
    return Feedback(
        volleys=volleys,
        globals=[GlobalFeedback(k, ratings.get(k), gold_ratings.get(k)) for k in miti.GLOBAL_KEYS],
        gold_has_globals=bool(gold_ratings),
        agreed=sum(c == g for c, g in pairs),
        total=len(pairs),
        agreement=proficiency.agreement(pairs),
        codes_used=[k for k in (*miti.CODE_KEYS, miti.NO_CODE) if k in used],
    )


def gold_codes_by_number(gold: GoldTranscript) -> list[tuple[int, str, str]]:
    """(utterance number, text, gold code) in reading order: the coordinator's view of a gold transcript."""
    rows = (
        GoldCode.objects.filter(gold=gold, additional=False)
        .order_by("utterance__volley__index", "utterance__index")
        .values_list("utterance__text", "code")
    )
    return [(n, text, code) for n, (text, code) in enumerate(rows, start=1)]
