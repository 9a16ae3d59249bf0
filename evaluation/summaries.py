"""MITI summary per submitted coding, read from the database in a few bulk queries.

One query for the submitted assignments, one for all their utterance codes (joined with the
utterance's volley, because the MITI tally works per volley), one for the global ratings. The MITI
rules themselves stay in ``annotation.miti``; this module only feeds them.

Scope: a study, optionally one coding round. Over all rounds, a coder who coded the same transcript
in two rounds counts once, with the later submission (same for a transcript's consensus), so the
per-source mean and the reliability tables never count one person twice.

A transcript's *final* value is its submitted consensus (adjudication) where there is one, else the
mean of its coders (``evaluation.aggregate``). Per-coder statistics and reliability use the coders'
own codings only, never the consensus.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np

from annotation import miti
from annotation.models import Assignment, CodingRound, GlobalRating, Study, TranscriptSource, UtteranceCode

from .aggregate import AGGREGATION_NOTE, AggregateReport, SummaryRow, aggregate

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS

# Per-transcript values the dashboard aggregates: the six manual scores, the two raw counts, the four
# globals and the ten tallies (keys as in annotation.miti; tallies and globals under their code key).
SCORE_KEYS: tuple[str, ...] = miti.SUMMARY_KEYS + miti.RAW_COUNT_KEYS
GLOBAL_KEYS: tuple[str, ...] = miti.GLOBAL_KEYS
TALLY_KEYS: tuple[str, ...] = miti.CODE_KEYS
ALL_VALUE_KEYS: tuple[str, ...] = SCORE_KEYS + GLOBAL_KEYS + TALLY_KEYS

VALUE_LABELS: dict[str, str] = {
    **miti.SUMMARY_LABELS,
    **{scale.key: scale.name for scale in miti.GLOBAL_SCALES},
    **{code.key: f"{code.name} ({code.key})" for code in miti.BEHAVIOUR_CODES},
}

FINAL_VALUE_NOTE = (
    AGGREGATION_NOTE
    + " Where an adjudicated consensus coding was submitted, the consensus is the transcript's value"
    " instead of the mean of its coders. Per-coder statistics use each coder's own codings."
)


@dataclass(frozen=True)
class SourceInfo:
    """A transcript source as a coordinator sees it (label = model/run; never shown to coders)."""

    id: int
    label: str
    kind: str
    generation_run_id: int | None


@dataclass
class CodingSummary:
    """The MITI numbers of one submitted assignment (a coder's coding or a consensus)."""

    assignment_id: int
    round_id: int
    round_name: str
    kind: str  # "coding" or "consensus"
    transcript_id: int
    blind_code: str
    source_id: int
    coder_id: int
    coder: str
    submitted_at: datetime | None
    globals_rated: bool
    counts: dict[str, int]
    globals: dict[str, int | None]
    scores: dict[str, float | int | None]
    n_coded: int = 0  # utterances with a code (NONE included)
    _lookup: dict[str, float | int | None] | None = field(default=None, repr=False, compare=False)

    def value(self, key: str) -> float | int | None:
        """A summary score, a global rating or a tally, by key (their keys never collide)."""
        lookup = self._lookup
        if lookup is None:
            # Reliability asks for 20 keys of thousands of codings: one merged dict, built once.
            lookup = self._lookup = {**self.counts, **self.globals, **self.scores}
        return lookup[key]

    def values(self) -> dict[str, float | int | None]:
        return {key: self.value(key) for key in ALL_VALUE_KEYS}

    def status(self, key: str) -> str | None:
        return miti.threshold_status(key, self.scores.get(key)) if key in miti.ALL_SUMMARY_KEYS else None


@dataclass
class StudySummaries:
    study: Study
    coding_round: CodingRound | None
    sources: dict[int, SourceInfo]
    codings: list[CodingSummary]  # kind = coding, one per (transcript, coder)
    consensus: list[CodingSummary]  # kind = consensus, one per transcript
    # (assignment_id, utterance_id, code) of every code of ``codings``: reliability reuses them.
    code_rows: list[tuple[int, int, str]] = field(default_factory=list, repr=False)

    @property
    def coders(self) -> dict[int, str]:
        return {s.coder_id: s.coder for s in sorted(self.codings, key=lambda s: s.coder)}

    def final_rows(self) -> list[CodingSummary]:
        """The consensus where a transcript has one, else all its coders' codings."""
        with_consensus = {s.transcript_id for s in self.consensus}
        return [*self.consensus, *(s for s in self.codings if s.transcript_id not in with_consensus)]

    def by_transcript(self) -> dict[int, list[CodingSummary]]:
        grouped: dict[int, list[CodingSummary]] = defaultdict(list)
        for s in self.codings:
            grouped[s.transcript_id].append(s)
        return dict(grouped)


@lru_cache(maxsize=4096)
def _volley_tally(codes: frozenset[str]) -> tuple[tuple[str, int], ...]:
    # The per-volley counts depend only on which codes occur in the volley (each slot counts at most
    # once; CR wins over SR and PERSUADE_WITH over PERSUADE whenever present), so one tally per
    # distinct set of codes is exact and saves ~80,000 calls on a large study.
    counts = miti.tally_volley(sorted(codes)).counts
    return tuple((key, n) for key, n in counts.items() if n)


def tally_codes(volleys: Iterable[Iterable[str]]) -> dict[str, int]:
    """Transcript counts from the codes of each volley (same result as ``miti.tally_transcript``)."""
    per_set: Counter[frozenset[str]] = Counter(frozenset(codes) for codes in volleys)
    totals = dict.fromkeys(miti.CODE_KEYS, 0)
    for codes, n_volleys in per_set.items():
        for key, n in _volley_tally(codes):
            totals[key] += n * n_volleys
    return totals


# Each behaviour code as one bit, so a volley's set of codes is one integer (NONE sets no bit).
_CODE_BITS: dict[str, int] = {key: 1 << i for i, key in enumerate(miti.CODE_KEYS)}


@lru_cache(maxsize=4096)
def _mask_tally(mask: int) -> tuple[tuple[str, int], ...]:
    return _volley_tally(frozenset(key for key, bit in _CODE_BITS.items() if mask & bit))


def _tally_rows(rows: list[tuple[int, int, int, str]]) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
    """Per-assignment tallies and coded-utterance counts from (assignment, utterance, volley, code) rows.

    Vectorised because a large study has hundreds of thousands of codes: the codes of each
    (assignment, volley) are OR-ed into one bit mask with numpy, then each distinct mask is tallied
    once by ``annotation.miti`` (see ``_volley_tally``) and multiplied by how often it occurs.
    """
    if not rows:
        return {}, {}
    n = len(rows)
    assignment = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    volley = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
    bits = np.fromiter((_CODE_BITS.get(r[3], 0) for r in rows), dtype=np.int64, count=n)
    ids, n_per = np.unique(assignment, return_counts=True)
    n_coded = dict(zip(ids.tolist(), n_per.tolist(), strict=True))
    order = np.lexsort((volley, assignment))
    assignment, volley, bits = assignment[order], volley[order], bits[order]
    starts = np.flatnonzero(np.r_[True, (assignment[1:] != assignment[:-1]) | (volley[1:] != volley[:-1])])
    masks = np.bitwise_or.reduceat(bits, starts)
    span = 1 << len(_CODE_BITS)
    pairs, times = np.unique(assignment[starts] * span + masks, return_counts=True)
    totals: dict[int, dict[str, int]] = {}
    for pair, k in zip(pairs.tolist(), times.tolist(), strict=True):
        assignment_id, mask = divmod(pair, span)
        counts = totals.get(assignment_id)
        if counts is None:
            counts = totals[assignment_id] = dict.fromkeys(miti.CODE_KEYS, 0)
        for key, value in _mask_tally(mask):
            counts[key] += value * k
    return totals, n_coded


def _assignment_filter(study: Study, coding_round: CodingRound | None) -> dict[str, object]:
    # Reassigned work (its coder removed) stays out of results unless a coordinator included it again.
    lookup: dict[str, object] = {
        "coding_round__study": study, "status": Assignment.Status.SUBMITTED, "in_results": True,
    }
    if coding_round is not None:
        lookup["coding_round"] = coding_round
    return lookup


def load_summaries(study: Study, coding_round: CodingRound | None = None) -> StudySummaries:
    """MITI summaries of every submitted assignment of ``study`` (or of one round), in 4 queries."""
    flt = _assignment_filter(study, coding_round)
    rows = list(
        Assignment.objects.filter(**flt)
        .order_by("submitted_at", "id")
        .values_list(
            "id", "coding_round_id", "coding_round__name", "coding_round__globals_rated", "kind",
            "transcript_id", "transcript__blind_code", "transcript__source_id", "coder_id",
            "coder__username", "submitted_at",
        )
    )
    # Later submissions replace earlier ones of the same (transcript, coder, kind) across rounds.
    latest: dict[tuple[int, int | None, str], tuple] = {}
    for row in rows:
        kind = row[4]
        key = (row[5], row[8] if kind == CODING else None, kind)
        latest[key] = row
    kept = {row[0]: row for row in latest.values()}

    code_flt = {f"assignment__{k}": v for k, v in flt.items()}
    coding_ids = {aid for aid, row in kept.items() if row[4] == CODING}
    rows_codes = list(
        UtteranceCode.objects.filter(**code_flt).values_list("assignment_id", "utterance_id", "utterance__volley_id", "code")
    )
    if len(kept) < len(rows):  # codings replaced by a later round's: drop their codes
        rows_codes = [r for r in rows_codes if r[0] in kept]
    counts_by_assignment, n_coded = _tally_rows(rows_codes)
    code_rows = [(a, u, c) for a, u, _v, c in rows_codes if a in coding_ids]

    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for assignment_id, scale, value in GlobalRating.objects.filter(**code_flt).values_list(
        "assignment_id", "scale", "value"
    ):
        ratings[assignment_id][scale] = value

    codings: list[CodingSummary] = []
    consensus: list[CodingSummary] = []
    for aid, row in kept.items():
        (_, round_id, round_name, globals_rated, kind, transcript_id, blind_code, source_id, coder_id,
         coder, submitted_at) = row
        counts = counts_by_assignment.get(aid) or dict.fromkeys(miti.CODE_KEYS, 0)
        given = ratings.get(aid, {})
        # Rounds built from imported labels (AnnoMI) have no globals: "not rated", never a default 3.
        globals_ = {key: (given.get(key) if globals_rated else None) for key in miti.GLOBAL_KEYS}
        scores = miti.summary_scores(counts, globals_).as_dict()
        summary = CodingSummary(
            assignment_id=aid, round_id=round_id, round_name=round_name, kind=kind,
            transcript_id=transcript_id, blind_code=blind_code, source_id=source_id, coder_id=coder_id,
            coder=coder, submitted_at=submitted_at, globals_rated=globals_rated, counts=counts,
            globals=globals_, scores=scores, n_coded=n_coded.get(aid, 0),
        )
        (codings if kind == CODING else consensus).append(summary)

    sources = {
        s.id: SourceInfo(s.id, s.label, s.kind, s.generation_run_id)
        for s in TranscriptSource.objects.filter(study=study).order_by("kind", "id")
    }
    return StudySummaries(study, coding_round, sources, codings, consensus, code_rows)


@dataclass
class StudyAggregates:
    """Per source (final values) and per coder (own codings) statistics of every value key."""

    keys: list[str]
    per_source: dict[int, dict[str, object]]
    per_coder: dict[int, dict[str, object]]
    transcripts_per_source: dict[int, int]
    codings_per_coder: dict[int, int]
    consensus_per_source: dict[int, int]
    note: str = FINAL_VALUE_NOTE


def _rows(summaries: Iterable[CodingSummary], keys: Iterable[str]) -> list[SummaryRow]:
    keys = list(keys)
    return [
        SummaryRow(
            s.source_id,
            s.transcript_id,
            "consensus" if s.kind == CONSENSUS else s.coder_id,
            {k: s.value(k) for k in keys},
        )
        for s in summaries
    ]


def study_aggregates(data: StudySummaries, keys: Iterable[str] = ALL_VALUE_KEYS) -> StudyAggregates:
    """Mean, SD, n and Fair/Good shares per source and per coder (docs/metrics.md, "Aggregation")."""
    keys = list(keys)
    by_source: AggregateReport = aggregate(_rows(data.final_rows(), keys), miti.THRESHOLDS, keys)
    by_coder: AggregateReport = aggregate(_rows(data.codings, keys), miti.THRESHOLDS, keys)
    consensus = Counter(s.source_id for s in data.consensus)
    return StudyAggregates(
        keys=keys,
        per_source=by_source.per_source,
        per_coder=by_coder.per_coder,
        transcripts_per_source=by_source.transcripts_per_source,
        codings_per_coder=by_coder.codings_per_coder,
        consensus_per_source=dict(consensus),
    )
