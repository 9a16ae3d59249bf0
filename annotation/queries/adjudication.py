"""Reads of adjudication: which transcripts of a round are double-coded, and how their coders compare.

A transcript is adjudicable in a round once at least two of its *coding* assignments are submitted.
Codings of gold transcripts (a calibration round's, or gold seeded into a study round to track drift)
are never adjudicated: their truth is the gold, and they never count in results. Reassigned work, also
out of results, is a study coding that a coordinator may include again: it stays comparable.
The coordinator's pages (and ``annotation.actions.adjudication.start_consensus``, which pre-fills the
consensus where every coder agrees) read through these.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q

from .. import miti
from ..errors import ActionError
from ..models import Assignment, CodingRound, GlobalRating, Transcript, Utterance, UtteranceCode, Volley

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS
SUBMITTED = Assignment.Status.SUBMITTED


def _codings(coding_round: CodingRound):
    """The round's coding assignments that adjudication compares: every one but codings of gold."""
    return Assignment.objects.filter(coding_round=coding_round, kind=CODING, gold_link__isnull=True)

@dataclass
class AdjudicationItem:
    """One transcript coded by two or more coders in a round (a row of the adjudication list)."""

    transcript: Transcript
    assigned: int  # coding assignments in the round
    submitted: int  # of which submitted
    utterances: int
    utterance_disagreements: int  # utterances where the submitted codings differ (or one is missing)
    global_disagreements: int
    consensus: Assignment | None

    @property
    def ready(self) -> bool:
        return self.submitted >= 2


@dataclass
class UtteranceComparison:
    utterance: Utterance
    codes: list[str | None]  # one per submitted coding, in the comparison's coder order
    consensus: str | None

    @property
    def agreed(self) -> bool:
        return None not in self.codes and len(set(self.codes)) == 1


@dataclass
class VolleyComparison:
    volley: Volley
    utterances: list[UtteranceComparison]


@dataclass
class GlobalComparison:
    scale: miti.GlobalScale
    values: list[int | None]
    consensus: int | None

    @property
    def agreed(self) -> bool:
        return None not in self.values and len(set(self.values)) == 1


@dataclass
class Comparison:
    """Side by side: every submitted coding of one transcript, and the consensus so far."""

    coding_round: CodingRound
    transcript: Transcript
    codings: list[Assignment]  # submitted coding assignments, ordered by coder username
    volleys: list[VolleyComparison]
    globals: list[GlobalComparison]
    consensus: Assignment | None
    notes: list[str] = field(default_factory=list)

    @property
    def utterance_disagreements(self) -> int:
        return sum(1 for v in self.volleys for u in v.utterances if not u.agreed)

    @property
    def global_disagreements(self) -> int:
        return sum(1 for g in self.globals if not g.agreed)


def adjudication_items(coding_round: CodingRound) -> list[AdjudicationItem]:
    """Transcripts of the round with two or more coding assignments, with disagreement counts."""
    per_transcript: dict[int, list[Assignment]] = defaultdict(list)
    for a in _codings(coding_round).order_by("id"):
        per_transcript[a.transcript_id].append(a)
    ids = [tid for tid, rows in per_transcript.items() if len(rows) >= 2]
    if not ids:
        return []
    transcripts = Transcript.objects.in_bulk(ids)
    consensus = {
        a.transcript_id: a
        for a in Assignment.objects.filter(coding_round=coding_round, kind=CONSENSUS, transcript_id__in=ids)
    }
    units: dict[int, list[int]] = defaultdict(list)
    for uid, tid in Utterance.objects.filter(volley__transcript_id__in=ids).values_list("id", "volley__transcript_id"):
        units[tid].append(uid)
    submitted_ids = {a.pk for rows in per_transcript.values() for a in rows if a.status == SUBMITTED}
    codes: dict[int, dict[int, str]] = defaultdict(dict)  # assignment -> utterance -> code
    for aid, uid, code in UtteranceCode.objects.filter(assignment_id__in=submitted_ids).values_list(
        "assignment_id", "utterance_id", "code"
    ):
        codes[aid][uid] = code
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    if coding_round.globals_rated:
        for aid, scale, value in GlobalRating.objects.filter(assignment_id__in=submitted_ids).values_list(
            "assignment_id", "scale", "value"
        ):
            ratings[aid][scale] = value
    items = []
    for tid in sorted(ids, key=lambda t: transcripts[t].blind_code):
        done = [a for a in per_transcript[tid] if a.status == SUBMITTED]
        u_dis = g_dis = 0
        if len(done) >= 2:
            u_dis = sum(1 for uid in units[tid] if not _all_same([codes[a.pk].get(uid) for a in done]))
            if coding_round.globals_rated:
                g_dis = sum(1 for key in miti.GLOBAL_KEYS if not _all_same([ratings[a.pk].get(key) for a in done]))
        items.append(
            AdjudicationItem(
                transcript=transcripts[tid],
                assigned=len(per_transcript[tid]),
                submitted=len(done),
                utterances=len(units[tid]),
                utterance_disagreements=u_dis,
                global_disagreements=g_dis,
                consensus=consensus.get(tid),
            )
        )
    return items


def compare(coding_round: CodingRound, transcript: Transcript) -> Comparison:
    """Every submitted coding of ``transcript`` in ``coding_round`` side by side (needs two or more)."""
    codings = list(
        _codings(coding_round).filter(transcript=transcript, status=SUBMITTED)
        .select_related("coder")
        .order_by("coder__username")
    )
    if len(codings) < 2:
        raise ActionError("Adjudication needs at least two submitted codings of this transcript.")
    consensus = Assignment.objects.filter(coding_round=coding_round, transcript=transcript, kind=CONSENSUS).first()
    wanted = [a.pk for a in codings] + ([consensus.pk] if consensus else [])
    codes: dict[int, dict[int, str]] = defaultdict(dict)
    for aid, uid, code in UtteranceCode.objects.filter(assignment_id__in=wanted).values_list(
        "assignment_id", "utterance_id", "code"
    ):
        codes[aid][uid] = code
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for aid, scale, value in GlobalRating.objects.filter(assignment_id__in=wanted).values_list(
        "assignment_id", "scale", "value"
    ):
        ratings[aid][scale] = value
    by_volley: dict[int, list[Utterance]] = defaultdict(list)
    for unit in Utterance.objects.filter(volley__transcript=transcript).order_by("volley__index", "index"):
        by_volley[unit.volley_id].append(unit)
    volleys = [
        VolleyComparison(
            volley=volley,
            utterances=[
                UtteranceComparison(
                    utterance=unit,
                    codes=[codes[a.pk].get(unit.pk) for a in codings],
                    consensus=codes[consensus.pk].get(unit.pk) if consensus else None,
                )
                for unit in by_volley[volley.pk]
            ],
        )
        for volley in Volley.objects.filter(transcript=transcript).order_by("index")
    ]
    globals_ = []
    if coding_round.globals_rated:
        globals_ = [
            GlobalComparison(
                scale=scale,
                values=[ratings[a.pk].get(scale.key) for a in codings],
                consensus=ratings[consensus.pk].get(scale.key) if consensus else None,
            )
            for scale in miti.GLOBAL_SCALES
        ]
    return Comparison(coding_round, transcript, codings, volleys, globals_, consensus)


def next_for_consensus(coding_round: CodingRound, current: Transcript | None = None) -> Transcript | None:
    """The next transcript of the round that waits for a consensus, or None when none is left.

    Waiting: two or more submitted codings and no submitted consensus yet. In the adjudication list's
    order (blind code), the first one after ``current``, wrapping around; never ``current`` itself.
    """
    waiting = list(
        Transcript.objects.filter(pk__in=Assignment.objects.filter(coding_round=coding_round).values("transcript_id"))
        .annotate(
            done=Count("assignments", filter=Q(assignments__coding_round=coding_round, assignments__kind=CODING,
                                               assignments__status=SUBMITTED, assignments__gold_link__isnull=True)),
            agreed=Count("assignments", filter=Q(assignments__coding_round=coding_round, assignments__kind=CONSENSUS,
                                                 assignments__status=SUBMITTED)),
        )
        .filter(Q(done__gte=2, agreed=0) | Q(pk=current.pk if current is not None else None))
        .order_by("blind_code")
    )
    pks = [t.pk for t in waiting]
    start = pks.index(current.pk) + 1 if current is not None and current.pk in pks else 0
    for transcript in waiting[start:] + waiting[:start]:
        if current is None or transcript.pk != current.pk:
            return transcript
    return None


def _all_same(values: list) -> bool:
    return None not in values and len(set(values)) == 1


__all__ = [
    "AdjudicationItem",
    "Comparison",
    "GlobalComparison",
    "UtteranceComparison",
    "VolleyComparison",
    "adjudication_items",
    "compare",
    "next_for_consensus",
]
