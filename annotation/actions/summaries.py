"""Stored MITI summaries of submitted codings: written in the transaction that submits them.

``submit_assignment`` (coders and consensus) and the AnnoMI import call :func:`store_summaries`;
``reopen_assignment`` calls :func:`drop_summaries`. The tally itself is ``annotation.tally`` — the
same code ``evaluation.summaries`` uses for a coding without a stored row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping

from django.db.models import Value

from .. import tally
from ..models import AdditionalCode, Assignment, AssignmentSummary, GlobalRating, UtteranceCode


def store_summaries(
    assignment_ids: Collection[int], *, known: Mapping[int, tuple[int, bool]] | None = None
) -> int:
    """Compute and store the summary of each given submitted assignment (3 queries + 1 write).

    ``known`` — {id: (version, round rates globals)} of assignments the caller holds locked and
    submitted in this transaction — saves the first query (the submit action passes its own)."""
    if not assignment_ids:
        return 0
    if known is not None and set(known) == set(assignment_ids):
        heads = [(aid, version, rated) for aid, (version, rated) in known.items()]
    else:
        heads = list(
            Assignment.objects.filter(pk__in=assignment_ids, status=Assignment.Status.SUBMITTED).values_list(
                "id", "version", "coding_round__globals_rated"
            )
        )
    ids = [aid for aid, _v, _g in heads]
    # The codes and, in the same query (UNION ALL, flagged), the further behaviours that imported labels
    # flag on an utterance (AnnoMI): those count in the tally only, never as coded utterances.
    fields = ("assignment_id", "utterance_id", "utterance__volley_id", "code", "additional")
    both = (
        UtteranceCode.objects.filter(assignment_id__in=ids).annotate(additional=Value(False)).values_list(*fields)
        .union(
            AdditionalCode.objects.filter(assignment_id__in=ids).annotate(additional=Value(True)).values_list(*fields),
            all=True,
        )
    )
    code_rows: list[tuple[int, int, int, str]] = []
    additional_rows: list[tuple[int, int, int, str]] = []
    for a, u, v, c, additional in both:
        (additional_rows if additional else code_rows).append((a, u, v, c))
    counts, n_coded = tally.tally_rows(code_rows, additional_rows)
    ratings: dict[int, dict[str, int]] = defaultdict(dict)
    for aid, scale, value in GlobalRating.objects.filter(assignment_id__in=ids).values_list(
        "assignment_id", "scale", "value"
    ):
        ratings[aid][scale] = value
    rows = []
    for aid, version, globals_rated in heads:
        full, globals_, scores = tally.summarise(counts.get(aid), ratings.get(aid, {}), globals_rated=globals_rated)
        rows.append(
            AssignmentSummary(
                assignment_id=aid, version=version, counts=full, globals=globals_, scores=scores,
                n_coded=n_coded.get(aid, 0),
            )
        )
    AssignmentSummary.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["assignment"],
        update_fields=["version", "counts", "globals", "scores", "n_coded", "computed_at"],
        batch_size=1000,
    )
    return len(rows)


def drop_summaries(assignment_ids: Collection[int]) -> None:
    """Forget the stored summaries of reopened work (the version check would ignore them anyway)."""
    AssignmentSummary.objects.filter(assignment_id__in=list(assignment_ids)).delete()
