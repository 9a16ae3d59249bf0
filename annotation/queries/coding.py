"""Reads of the coding page and the coder's API: volleys with codes and live tallies, globals,
progress, editability, and what stands between an assignment and submission.

The page, the API workspace and the submit action all read through these, so they agree. Nothing
here reads a transcript's source: coder-facing data stays blind. Callers pass an assignment they
already resolved through the permission gate (``access.assignment_for``).

Blinding (docs/blinding.md): a coder names volleys and utterances by their position in the transcript
— a volley by its number, an utterance by its number in reading order (1, 2, … across the
transcript) — never by a database id, which follows creation order and so the transcript's source.
``UtteranceRow.id``/``VolleyRow.id`` are those positions; ``pk`` stays on the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Count, F, Func, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .. import miti
from ..errors import ActionError
from ..models import Assignment, CodingRound, GlobalRating, Utterance, UtteranceCode, Volley

# --------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    coded: int
    total: int
    globals_set: int
    globals_total: int  # 0 when the round does not rate globals

    @property
    def percent(self) -> int:
        done, whole = self.coded + self.globals_set, self.total + self.globals_total
        return 100 if whole == 0 else round(100 * done / whole)

    @property
    def complete(self) -> bool:
        return self.coded == self.total and self.globals_set == self.globals_total


def progress_for(assignments: Iterable[Assignment]) -> dict[int, Progress]:
    """Progress of several assignments in three queries (for the queue page), keyed by assignment id."""
    assignments = list(assignments)
    if not assignments:
        return {}
    ids = [a.pk for a in assignments]
    utterances_per_transcript = Utterance.objects.filter(volley__transcript=OuterRef("transcript_id")).values(
        "volley__transcript"
    ).annotate(n=Count("id")).values("n")
    rows = Assignment.objects.filter(pk__in=ids).annotate(
        total=Coalesce(Subquery(utterances_per_transcript), 0),
        n_globals=Count("global_ratings", distinct=True),
        rated=F("coding_round__globals_rated"),
    ).values("pk", "total", "n_globals", "rated")
    coded = dict(
        UtteranceCode.objects.filter(assignment_id__in=ids).values("assignment_id").annotate(n=Count("id"))
        .values_list("assignment_id", "n")
    )
    return {
        row["pk"]: Progress(
            coded=coded.get(row["pk"], 0), total=row["total"],
            globals_set=row["n_globals"] if row["rated"] else 0,
            globals_total=len(miti.GLOBAL_KEYS) if row["rated"] else 0,
        )
        for row in rows
    }


def assignment_progress(assignment: Assignment) -> Progress:
    """Coded utterances and rated globals of one assignment, in one query (it follows every save)."""
    def count(queryset) -> Subquery:
        # Func, not Count: a plain COUNT in the subquery, with no GROUP BY added.
        return Subquery(queryset.order_by().annotate(n=Func("pk", function="COUNT")).values("n"))

    counts = {
        "coded": Coalesce(count(UtteranceCode.objects.filter(assignment=OuterRef("pk"))), 0),
        "n_globals": Coalesce(count(GlobalRating.objects.filter(assignment=OuterRef("pk"))), 0),
    }
    loaded = assignment.__dict__.get("_reading_order")  # a save already read the transcript's utterances
    if loaded is None:
        counts["total"] = Coalesce(count(Utterance.objects.filter(volley__transcript=OuterRef("transcript_id"))), 0)
    row = Assignment.objects.filter(pk=assignment.pk).annotate(**counts).values(*counts).get()
    rated = assignment.coding_round.globals_rated
    return Progress(
        coded=row["coded"], total=len(loaded) if loaded is not None else row["total"],
        globals_set=row["n_globals"] if rated else 0,
        globals_total=len(miti.GLOBAL_KEYS) if rated else 0,
    )


# --------------------------------------------------------------------------------------------------
# The coding sheet
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UtteranceRow:
    id: int  # the coder-facing id: 1-based position in the transcript's reading order
    pk: int  # the database id: server side only, never rendered
    number: int  # 1-based within the volley
    text: str
    code: str | None  # None: not coded yet; "NONE": "No code"
    # Assisted rounds only: the machine coder's code for this utterance (a code key, nothing else about
    # the machine or the transcript's source), and whether the stored code is that suggestion taken.
    suggestion: str | None = None
    accepted: bool = False


@dataclass(frozen=True)
class VolleyRow:
    id: int  # the coder-facing id: the volley's number
    pk: int  # the database id: server side only, never rendered
    number: int  # 1-based within the transcript
    client_context: str
    utterances: list[UtteranceRow]
    tally: miti.VolleyTally

    @property
    def counted(self) -> list[str]:
        """Code keys this volley contributes, in the manual's order."""
        return [key for key in miti.CODE_KEYS if self.tally.counts.get(key)]


@dataclass(frozen=True)
class CodingSheet:
    """Everything the coding page shows for one assignment — and nothing about the transcript's source."""

    volleys: list[VolleyRow]
    globals: dict[str, int | None]
    progress: Progress
    codes: dict[int, str] = field(default_factory=dict)


def volley_rows(assignment: Assignment, volley_ids: Sequence[int] | None = None) -> list[VolleyRow]:
    """The transcript's volleys (or just ``volley_ids``) with this assignment's codes and live tallies."""
    volleys = Volley.objects.filter(transcript_id=assignment.transcript_id).order_by("index")
    if volley_ids is not None:
        volleys = volleys.filter(pk__in=volley_ids)
    # Plain rows, not model instances: the coding page's partial follows every save.
    volley_list = list(volleys.values_list("pk", "index", "client_context"))
    by_volley: dict[int, list[tuple[int, int, str]]] = {pk: [] for pk, _index, _context in volley_list}
    for pk, volley_id, index, text in (
        Utterance.objects.filter(volley_id__in=list(by_volley)).order_by().values_list("pk", "volley_id", "index", "text")
    ):
        by_volley[volley_id].append((index, pk, text))
    codes_query = UtteranceCode.objects.filter(assignment=assignment)
    if volley_ids is not None:
        codes_query = codes_query.filter(utterance__volley_id__in=volley_ids)
    stored = {u: (c, a) for u, c, a in codes_query.values_list("utterance_id", "code", "suggestion_accepted")}
    codes = {u: c for u, (c, _a) in stored.items()}
    suggested = suggestions(assignment, volley_ids)
    ordinal = _ordinals(assignment)
    rows = []
    for volley_pk, volley_index, client_context in volley_list:
        utterances = sorted(by_volley[volley_pk])
        row_codes = [codes.get(pk) for _index, pk, _text in utterances]
        rows.append(
            VolleyRow(
                id=volley_index + 1, pk=volley_pk, number=volley_index + 1, client_context=client_context,
                utterances=[
                    UtteranceRow(
                        id=ordinal[pk], pk=pk, number=index + 1, text=text, code=c,
                        suggestion=suggested.get(pk), accepted=bool(c) and stored[pk][1],
                    )
                    for (index, pk, text), c in zip(utterances, row_codes, strict=True)
                ],
                tally=miti.tally_volley(row_codes),
            )
        )
    return rows


def _is_assisted(assignment: Assignment) -> bool:
    if assignment.kind != Assignment.Kind.CODING:
        return False
    if Assignment.coding_round.is_cached(assignment):
        return assignment.coding_round.purpose == CodingRound.Purpose.ASSISTED
    return CodingRound.objects.filter(pk=assignment.coding_round_id, purpose=CodingRound.Purpose.ASSISTED).exists()


def suggestions(assignment: Assignment, volley_ids: Sequence[int] | None = None) -> dict[int, str]:
    """Utterance pk → the machine coder's code, for a coder's assignment in an assisted round ({} elsewhere).

    The machine coding of the same transcript in the same round (the first machine coder added, when
    there are several). Only code keys leave here: a suggestion says nothing about which machine made
    it, nor about the transcript's source (docs/blinding.md). A study round never shows suggestions.
    """
    if not _is_assisted(assignment):
        return {}
    machine = (
        Assignment.objects.filter(
            coding_round_id=assignment.coding_round_id, transcript_id=assignment.transcript_id,
            kind=Assignment.Kind.MACHINE,
        ).order_by("id").values_list("id", flat=True).first()
    )
    if machine is None:
        return {}
    rows = UtteranceCode.objects.filter(assignment_id=machine)
    if volley_ids is not None:
        rows = rows.filter(utterance__volley_id__in=volley_ids)
    return dict(rows.values_list("utterance_id", "code"))


def suggestion_for(assignment: Assignment, utterance_pk: int) -> str | None:
    """The machine's suggested code for one utterance of a coder's assisted assignment, or None."""
    if not _is_assisted(assignment):
        return None
    return (
        UtteranceCode.objects.filter(
            assignment__coding_round_id=assignment.coding_round_id, assignment__transcript_id=assignment.transcript_id,
            assignment__kind=Assignment.Kind.MACHINE, utterance_id=utterance_pk,
        ).order_by("assignment_id").values_list("code", flat=True).first()
    )


def reading_order(assignment: Assignment) -> list[tuple[int, int]]:
    """``(utterance pk, volley pk)`` of the transcript in reading order: position ``n - 1`` is utterance ``n``.

    Read once per assignment instance and kept on it: a save resolves the number the coder sent, checks
    the utterance belongs to the transcript and renders the volley's numbers from this one query (the
    instance comes from ``access.assignment_for`` afresh on every request, so nothing outlives it).
    """
    cached = assignment.__dict__.get("_reading_order")
    if cached is None:
        cached = list(
            Utterance.objects.filter(volley__transcript_id=assignment.transcript_id)
            .order_by("volley__index", "index").values_list("pk", "volley_id")
        )
        assignment.__dict__["_reading_order"] = cached
    return cached


def loaded_volley_of(assignment: Assignment, utterance_pk: int) -> int | None:
    """The volley of utterance ``utterance_pk`` when this instance's reading order is already loaded and
    holds it (so it is one of the transcript's utterances); ``None`` otherwise (nothing is read)."""
    loaded = assignment.__dict__.get("_reading_order")
    if loaded is None:
        return None
    return next((volley for pk, volley in loaded if pk == utterance_pk), None)


def _ordinals(assignment: Assignment) -> dict[int, int]:
    """Utterance pk → its coder-facing number (1-based, reading order across the transcript)."""
    return {pk: n for n, (pk, _volley) in enumerate(reading_order(assignment), start=1)}


def utterance_pk(assignment: Assignment, number: object) -> int:
    """The utterance a coder names by its number in the transcript (what pages and API show as its id)."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ActionError(f"utterance must be an utterance number of this transcript (1, 2, …), got {number!r}")
    order = reading_order(assignment)
    if number > len(order):
        raise ActionError(f"This transcript has no utterance {number}.")
    return order[number - 1][0]


def utterance_number(assignment: Assignment, pk: int) -> int:
    """The coder-facing number of utterance ``pk`` (the inverse of :func:`utterance_pk`)."""
    return _ordinals(assignment)[pk]


def volley_number(volley_pk: int) -> int:
    """The coder-facing id of a volley: its number in the transcript."""
    return Volley.objects.filter(pk=volley_pk).values_list("index", flat=True).get() + 1


def global_values(assignment: Assignment) -> dict[str, int | None]:
    """The four scales in the manual's order, ``None`` when not rated yet."""
    rated = dict(GlobalRating.objects.filter(assignment=assignment).values_list("scale", "value"))
    return {key: rated.get(key) for key in miti.GLOBAL_KEYS}


def coding_sheet(assignment: Assignment) -> CodingSheet:
    """The whole coding page's data for one assignment."""
    volleys = volley_rows(assignment)
    codes = {u.pk: u.code for v in volleys for u in v.utterances if u.code is not None}
    values = global_values(assignment)
    rated = assignment.coding_round.globals_rated
    progress = Progress(
        coded=len(codes), total=sum(len(v.utterances) for v in volleys),
        globals_set=sum(v is not None for v in values.values()) if rated else 0,
        globals_total=len(miti.GLOBAL_KEYS) if rated else 0,
    )
    return CodingSheet(volleys=volleys, globals=values, progress=progress, codes=codes)


def is_editable(assignment: Assignment) -> bool:
    """Whether the coder may still change this assignment (not submitted, round open)."""
    return (
        assignment.status != Assignment.Status.SUBMITTED
        and assignment.coding_round.status == CodingRound.Status.OPEN
    )


def volley_tally(assignment: Assignment, volley_id: int) -> miti.VolleyTally:
    """The MITI tally of one volley from this assignment's codes, utterances in order."""
    codes = dict(
        UtteranceCode.objects.filter(assignment=assignment, utterance__volley_id=volley_id).values_list(
            "utterance_id", "code"
        )
    )
    order = Utterance.objects.filter(volley_id=volley_id).order_by("index").values_list("id", flat=True)
    return miti.tally_volley([codes.get(uid) for uid in order])


# --------------------------------------------------------------------------------------------------
# Completeness (the submit action checks it under the assignment's row lock)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """What stands between an assignment and submission."""

    total_utterances: int
    uncoded: list[tuple[int, int]]  # (volley number, utterance number), both 1-based
    globals_missing: list[str]  # scale keys

    @property
    def complete(self) -> bool:
        return not self.uncoded and not self.globals_missing

    def message(self) -> str:
        """A sentence a coder can act on, e.g. which utterances and which scales are missing."""
        parts = []
        if self.uncoded:
            by_volley: dict[int, list[str]] = {}
            for volley_no, utt_no in self.uncoded:
                by_volley.setdefault(volley_no, []).append(str(utt_no))
            where = "; ".join(
                _("volley %(volley)s: utterance %(utterances)s") % {"volley": v, "utterances": ", ".join(u)}
                for v, u in list(by_volley.items())[:8]
            )
            if len(by_volley) > 8:
                where += _("; and %(n)s more volleys") % {"n": len(by_volley) - 8}
            parts.append(
                ngettext(
                    "%(n)s of %(total)s utterance has no code yet (%(where)s) — give each a code or \"No code\"",
                    "%(n)s of %(total)s utterances have no code yet (%(where)s) — give each a code or \"No code\"",
                    self.total_utterances,
                ) % {"n": len(self.uncoded), "total": self.total_utterances, "where": where}
            )
        if self.globals_missing:
            names = ", ".join(_(miti.GLOBAL_BY_KEY[key].name) for key in self.globals_missing)
            parts.append(_("%(n)s global ratings are missing (%(names)s)") % {
                "n": len(self.globals_missing), "names": names})
        return _("Cannot submit yet: %(what)s.") % {"what": "; ".join(parts)}


def missing_for_submit(assignment: Assignment) -> Missing:
    """Uncoded utterances and unrated globals (globals only when the round rates them)."""
    coded = set(UtteranceCode.objects.filter(assignment=assignment).values_list("utterance_id", flat=True))
    rows = (
        Utterance.objects.filter(volley__transcript_id=assignment.transcript_id)
        .order_by("volley__index", "index")
        .values_list("id", "volley__index", "index")
    )
    total = 0
    uncoded: list[tuple[int, int]] = []
    for uid, volley_index, index in rows:
        total += 1
        if uid not in coded:
            uncoded.append((volley_index + 1, index + 1))
    globals_missing: list[str] = []
    if assignment.coding_round.globals_rated:
        rated = set(GlobalRating.objects.filter(assignment=assignment).values_list("scale", flat=True))
        globals_missing = [key for key in miti.GLOBAL_KEYS if key not in rated]
    return Missing(total_utterances=total, uncoded=uncoded, globals_missing=globals_missing)


__all__ = [
    "CodingSheet",
    "Missing",
    "Progress",
    "UtteranceRow",
    "VolleyRow",
    "assignment_progress",
    "loaded_volley_of",
    "reading_order",
    "utterance_number",
    "utterance_pk",
    "volley_number",
    "coding_sheet",
    "global_values",
    "is_editable",
    "missing_for_submit",
    "progress_for",
    "volley_rows",
    "volley_tally",
]
