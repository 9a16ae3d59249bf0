"""Coding progress of rounds: one grouped query serves the round pages, the API, the evaluation
dashboard and the report, so every place counts the same assignments the same way.

``coding_progress`` counts a study's assignments per round, coder and kind by status in one query;
``round_totals`` folds those rows into one line per round (coding assignments submitted / total,
consensus codings counted apart). Callers resolve the study through the permission gate first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from ..models import Assignment, CodingRound, Study

CODING = Assignment.Kind.CODING
CONSENSUS = Assignment.Kind.CONSENSUS


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


@dataclass(frozen=True)
class ProgressRow:
    """One coder's assignments of one kind (coding or consensus) in one round, by status."""

    round_id: int
    round_name: str
    coder_id: int
    coder: str  # username
    kind: str
    total: int
    submitted: int
    in_progress: int
    pending: int

    @property
    def percent(self) -> float:
        return _percent(self.submitted, self.total)

    @property
    def percent_whole(self) -> int:
        """The share submitted in whole percent, as the round pages print it."""
        return round(self.percent) if self.total else 0


def coding_progress(
    study: Study, coding_round: CodingRound | None = None, *, round_ids: Iterable[int] | None = None
) -> list[ProgressRow]:
    """Assignments of the study (one round, or the rounds in ``round_ids``) per round, coder and kind by
    status, in one grouped query; rounds in creation order, then kind, then coder."""
    qs = Assignment.objects.filter(coding_round__study=study)
    if coding_round is not None:
        qs = qs.filter(coding_round=coding_round)
    if round_ids is not None:
        qs = qs.filter(coding_round_id__in=list(round_ids))
    grouped = (
        qs.values("coding_round_id", "coding_round__name", "coder_id", "coder__username", "kind")
        .annotate(
            total=Count("id"),
            submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
            in_progress=Count("id", filter=Q(status=Assignment.Status.IN_PROGRESS)),
            pending=Count("id", filter=Q(status=Assignment.Status.PENDING)),
        )
        .order_by("coding_round__created_at", "coding_round_id", "kind", "coder__username")
    )
    return [
        ProgressRow(
            g["coding_round_id"], g["coding_round__name"], g["coder_id"], g["coder__username"], g["kind"],
            g["total"], g["submitted"], g["in_progress"], g["pending"],
        )
        for g in grouped
    ]


@dataclass(frozen=True)
class RoundTotal:
    """One round: its coding assignments by status, and the consensus codings submitted."""

    round_id: int
    round: str  # the round's name
    total: int = 0
    submitted: int = 0
    in_progress: int = 0
    pending: int = 0
    consensus: int = 0

    @property
    def percent(self) -> float:
        return _percent(self.submitted, self.total)

    @property
    def percent_whole(self) -> int:
        return round(self.percent) if self.total else 0

    def by_status(self) -> dict[str, int]:
        """Coding assignments per status (the API's ``progress`` of a round)."""
        return {
            Assignment.Status.PENDING: self.pending,
            Assignment.Status.IN_PROGRESS: self.in_progress,
            Assignment.Status.SUBMITTED: self.submitted,
        }


def round_totals(rows: Iterable[ProgressRow]) -> list[RoundTotal]:
    """Per round, in the rows' order: coding assignments by status (consensus counted separately,
    machine codings not at all)."""
    totals: dict[int, dict[str, object]] = {}
    for row in rows:
        entry = totals.setdefault(row.round_id, {"round_id": row.round_id, "round": row.round_name})
        if row.kind == CONSENSUS:
            entry["consensus"] = int(entry.get("consensus", 0)) + row.submitted
        elif row.kind == CODING:  # machine codings are no coder's work: left out of the round's progress
            for key in ("total", "submitted", "in_progress", "pending"):
                entry[key] = int(entry.get(key, 0)) + getattr(row, key)
    return [RoundTotal(**entry) for entry in totals.values()]  # type: ignore[arg-type]


def totals_by_round(rows: Iterable[ProgressRow]) -> dict[int, RoundTotal]:
    return {total.round_id: total for total in round_totals(rows)}


__all__ = ["ProgressRow", "RoundTotal", "coding_progress", "round_totals", "totals_by_round"]
