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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Value
from django.utils.translation import gettext, gettext_noop

from annotation import miti, tally
from annotation.models import (
    AdditionalCode,
    Assignment,
    CodingRound,
    GlobalRating,
    Study,
    TranscriptSource,
    UtteranceCode,
)

from .aggregate import AggregateReport, SummaryRow, aggregate

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS
MACHINE = Assignment.Kind.MACHINE

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

def display_label(key: str) -> str:
    """A score, global or code by its name in the active language (codes keep their abbreviation)."""
    code = miti.CODE_BY_KEY.get(key)
    if code is not None:
        return f"{gettext(code.name)} ({key})"
    return gettext(VALUE_LABELS[key]) if key in VALUE_LABELS else key


FINAL_VALUE_NOTE = gettext_noop(
    "Per source, a transcript coded by several coders contributes the mean of its coders' values; "
    "codings where a score is undefined (n/a) are left out of that score. SD is the sample SD (n - 1). "
    "Meets Fair/Good: value >= the MITI 4.2.1 cut-off."
    " Where an adjudicated consensus coding was submitted, the consensus is the transcript's value"
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
    # Loads (assignment_id, utterance_id, code) of every code of ``codings`` when reliability asks:
    # the summaries themselves come from stored rows and need no code.
    load_code_rows: Callable[[], list[tuple[int, int, str]]] | None = field(default=None, repr=False)
    _code_rows: list[tuple[int, int, str]] | None = field(default=None, repr=False)
    # kind = machine, one per (transcript, machine coder): loaded only when asked (``with_machine``), so
    # human results and reliability never see them.
    machine: list[CodingSummary] = field(default_factory=list)

    @property
    def code_rows(self) -> list[tuple[int, int, str]]:
        if self._code_rows is None:
            self._code_rows = self.load_code_rows() if self.load_code_rows is not None else []
        return self._code_rows

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


# The tally lives with the instrument (the submit action stores it); re-exported for callers here.
tally_codes = tally.tally_codes
_tally_rows = tally.tally_rows


def _assignment_filter(
    study: Study, coding_round: CodingRound | None, with_machine: bool = False
) -> dict[str, object]:
    # Reassigned work (its coder removed) stays out of results unless a coordinator included it again;
    # machine codings stay out of human results unless asked for (the machine vs human view).
    lookup: dict[str, object] = {
        "coding_round__study": study, "status": Assignment.Status.SUBMITTED, "in_results": True,
        "kind__in": (CODING, CONSENSUS, MACHINE) if with_machine else (CODING, CONSENSUS),
    }
    if coding_round is not None:
        lookup["coding_round"] = coding_round
    return lookup


def load_summaries(
    study: Study, coding_round: CodingRound | None = None, *, with_machine: bool = False
) -> StudySummaries:
    """MITI summaries of every submitted assignment of ``study`` (or of one round).

    Machine codings are left out unless ``with_machine`` (then they are ``StudySummaries.machine``).

    Two queries when every coding has its stored summary (``annotation.models.AssignmentSummary``,
    written on submit): the assignments with their summaries, and the sources. Codings without a
    valid stored row (data written before summaries were stored, or bulk-loaded) are tallied from
    their codes here, in two more queries restricted to them.
    """
    flt = _assignment_filter(study, coding_round, with_machine)
    rows = list(
        Assignment.objects.filter(**flt)
        .order_by("submitted_at", "id")
        .values_list(
            "id", "coding_round_id", "coding_round__name", "coding_round__globals_rated", "kind",
            "transcript_id", "transcript__blind_code", "transcript__source_id", "coder_id",
            "coder__username", "submitted_at", "version", "summary__version", "summary__counts",
            "summary__globals", "summary__scores", "summary__n_coded",
        )
    )
    # Later submissions replace earlier ones of the same (transcript, coder, kind) across rounds.
    latest: dict[tuple[int, int | None, str], tuple] = {}
    for row in rows:
        kind = row[4]
        key = (row[5], row[8] if kind in (CODING, MACHINE) else None, kind)
        latest[key] = row
    kept = {row[0]: row for row in latest.values()}
    coding_ids = {aid for aid, row in kept.items() if row[4] == CODING}
    code_flt = {f"assignment__{k}": v for k, v in flt.items()}

    # A stored summary counts only for the version it was computed at (a reopen bumps the version).
    missing = [aid for aid, row in kept.items() if row[12] is None or row[12] != row[11]]
    counts_by_assignment: dict[int, dict[str, int]] = {}
    n_coded: dict[int, int] = {}
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    if missing:
        missing_flt: dict[str, object] = (
            code_flt if len(missing) == len(kept) else {"assignment_id__in": missing}
        )
        # The codes, and in the same query (UNION ALL, flagged) the further behaviours that imported
        # labels flag on an utterance (AnnoMI, docs/miti.md "Labels imported from AnnoMI"): those count
        # in the tally only, never as coded utterances or in utterance-level agreement.
        fields = ("assignment_id", "utterance_id", "utterance__volley_id", "code", "additional")
        both = (
            UtteranceCode.objects.filter(**missing_flt).annotate(additional=Value(False)).values_list(*fields)
            .union(
                AdditionalCode.objects.filter(**missing_flt).annotate(additional=Value(True)).values_list(*fields),
                all=True,
            )
        )
        rows_codes: list[tuple[int, int, int, str]] = []
        rows_additional: list[tuple[int, int, int, str]] = []
        for a, u, v, c, additional in both:
            (rows_additional if additional else rows_codes).append((a, u, v, c))
        if len(kept) < len(rows):  # codings replaced by a later round's: drop their codes
            rows_codes = [r for r in rows_codes if r[0] in kept]
            rows_additional = [r for r in rows_additional if r[0] in kept]
        counts_by_assignment, n_coded = tally.tally_rows(rows_codes, rows_additional)
        for assignment_id, scale, value in GlobalRating.objects.filter(**missing_flt).values_list(
            "assignment_id", "scale", "value"
        ):
            ratings[assignment_id][scale] = value

    def load_code_rows() -> list[tuple[int, int, str]]:
        return [
            (a, u, c)
            for a, u, c in UtteranceCode.objects.filter(**code_flt)
            .values_list("assignment_id", "utterance_id", "code")
            .iterator(chunk_size=20000)
            if a in coding_ids
        ]

    missing_set = set(missing)
    codings: list[CodingSummary] = []
    consensus: list[CodingSummary] = []
    machine: list[CodingSummary] = []
    for aid, row in kept.items():
        (_, round_id, round_name, globals_rated, kind, transcript_id, blind_code, source_id, coder_id,
         coder, submitted_at, _version, _stored_version, stored_counts, stored_globals, stored_scores,
         stored_n_coded) = row
        if aid in missing_set:
            counts, globals_, scores = tally.summarise(
                counts_by_assignment.get(aid), ratings.get(aid, {}), globals_rated=globals_rated
            )
            coded = n_coded.get(aid, 0)
        else:
            counts, globals_, scores, coded = stored_counts, stored_globals, stored_scores, stored_n_coded
        summary = CodingSummary(
            assignment_id=aid, round_id=round_id, round_name=round_name, kind=kind,
            transcript_id=transcript_id, blind_code=blind_code, source_id=source_id, coder_id=coder_id,
            coder=coder, submitted_at=submitted_at, globals_rated=globals_rated, counts=counts,
            globals=globals_, scores=scores, n_coded=coded,
        )
        {CODING: codings, CONSENSUS: consensus, MACHINE: machine}[kind].append(summary)

    sources = {
        s.id: SourceInfo(s.id, s.label, s.kind, s.generation_run_id)
        for s in TranscriptSource.objects.filter(study=study).order_by("kind", "id")
    }
    return StudySummaries(study, coding_round, sources, codings, consensus, load_code_rows, machine=machine)


@dataclass
class StudyAggregates:
    """Per source (final values) and per coder (own codings) statistics of every value key."""

    keys: list[str]
    per_source: dict  # {source id or (source id, group): {key: ScoreStats}}
    per_coder: dict[int, dict[str, object]]
    transcripts_per_source: dict
    codings_per_coder: dict[int, int]
    consensus_per_source: dict
    note: str = FINAL_VALUE_NOTE


def _rows(
    summaries: Iterable[CodingSummary], keys: Iterable[str], group_of: Callable[[CodingSummary], str] | None = None
) -> list[SummaryRow]:
    keys = list(keys)
    return [
        SummaryRow(
            s.source_id if group_of is None else (s.source_id, group_of(s)),
            s.transcript_id,
            "consensus" if s.kind == CONSENSUS else s.coder_id,
            {k: s.value(k) for k in keys},
        )
        for s in summaries
    ]


def study_aggregates(
    data: StudySummaries,
    keys: Iterable[str] = ALL_VALUE_KEYS,
    group_of: Callable[[CodingSummary], str] | None = None,
) -> StudyAggregates:
    """Mean, SD, n and Fair/Good shares per source and per coder (docs/metrics.md, "Aggregation").

    With ``group_of`` (``evaluation.grouping``), the per-source statistics are per (source id, group)
    instead: the keys of ``per_source``, ``transcripts_per_source`` and ``consensus_per_source`` are
    those pairs."""
    keys = list(keys)
    by_source: AggregateReport = aggregate(_rows(data.final_rows(), keys, group_of), miti.THRESHOLDS, keys)
    by_coder: AggregateReport = aggregate(_rows(data.codings, keys), miti.THRESHOLDS, keys)
    consensus = Counter(s.source_id if group_of is None else (s.source_id, group_of(s)) for s in data.consensus)
    return StudyAggregates(
        keys=keys,
        per_source=by_source.per_source,
        per_coder=by_coder.per_coder,
        transcripts_per_source=by_source.transcripts_per_source,
        codings_per_coder=by_coder.codings_per_coder,
        consensus_per_source=dict(consensus),
    )
