"""Permission-aware reads of machine coders: coordinators of the study only (a coder never learns of one).

An outsider gets 404, a coder of the study 403 (``annotation.queries.study_for``).
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from annotation import queries as annotation_queries
from annotation.models import CodingRound, Study

from .models import MachineCoder, MachineCodingItem, MachineCodingRun

COORDINATOR = annotation_queries.COORDINATOR


def study_for_coders(user, slug: str) -> Study:
    return annotation_queries.study_for(user, slug, role=COORDINATOR)


def coders_of(study: Study) -> QuerySet[MachineCoder]:
    return MachineCoder.objects.filter(study=study).select_related("model", "training_round")


def coder_for(user, slug: str, pk: object) -> MachineCoder:
    study = study_for_coders(user, slug)
    coder = coders_of(study).filter(pk=pk).first() if str(pk).isdigit() else None
    if coder is None:
        raise Http404("No such machine coder.")
    return coder


def rounds_of(study: Study) -> QuerySet[CodingRound]:
    return CodingRound.objects.filter(study=study).order_by("-created_at")


def runs_of(coder: MachineCoder) -> QuerySet[MachineCodingRun]:
    return (
        MachineCodingRun.objects.filter(coder=coder).select_related("coding_round")
        .annotate(
            total=Count("items"),
            done=Count("items", filter=Q(items__status=MachineCodingItem.Status.DONE)),
            failed=Count("items", filter=Q(items__status=MachineCodingItem.Status.FAILED)),
        )
    )


def failed_items(run: MachineCodingRun, limit: int = 50) -> list[MachineCodingItem]:
    return list(
        run.items.filter(status=MachineCodingItem.Status.FAILED)
        .select_related("assignment__transcript", "volley").order_by("assignment_id", "volley__index")[:limit]
    )


def run_for(coder: MachineCoder, pk: object) -> MachineCodingRun:
    run = MachineCodingRun.objects.filter(coder=coder, pk=pk).first() if str(pk).isdigit() else None
    if run is None:
        raise Http404("No such run.")
    return run
