"""Permission-aware reads of the recipe's jobs; views and commands go through these.

Also the recipe's dialogue reads (``select_dialogues``, ``turn_pairs``) that its actions and compute
share. Transformation and fine-tuning jobs belong to a study and are coordinator-only (404 for outsiders,
403 for coders, through ``annotation.queries.study_for``). Prompts are shared by every study; any
coordinator may read and version them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from annotation import queries as annotation_queries
from annotation.errors import ActionError
from annotation.models import Dialogue, Study, Turn

from .models import FineTuneJob, PromptTemplate, QualityScore, TransformationItem, TransformationJob

COORDINATOR = annotation_queries.COORDINATOR
Item = TransformationItem


def study_for(user, slug: str) -> Study:
    return annotation_queries.study_for(user, slug, role=COORDINATOR)


def transformation_jobs(study: Study) -> QuerySet[TransformationJob]:
    return TransformationJob.objects.filter(study=study).select_related("model", "prompt", "judge_model")


def transformation_for(user, slug: str, pk: int) -> TransformationJob:
    job = transformation_jobs(study_for(user, slug)).filter(pk=pk).select_related("study").first()
    if job is None:
        raise Http404("No such transformation job.")
    return job


def transformation_item(job: TransformationJob, pk: int) -> TransformationItem:
    item = Item.objects.filter(job=job, pk=pk).select_related("source", "result").first()
    if item is None:
        raise Http404("No such item.")
    return item


@dataclass(frozen=True)
class TransformationProgress:
    total: int
    accepted: int
    rejected: int
    failed: int
    open: int
    finished: bool

    @property
    def finished_items(self) -> int:
        return self.total - self.open

    @property
    def percent(self) -> float:
        return 100.0 * self.finished_items / self.total if self.total else 0.0

    @property
    def percent_accepted(self) -> float:
        return 100.0 * self.accepted / self.total if self.total else 0.0


def transformation_progress(job: TransformationJob) -> TransformationProgress:
    """Counts computed on read from the items (no stored counters)."""
    counts = Item.objects.filter(job=job).aggregate(
        total=Count("id"),
        accepted=Count("id", filter=Q(status=Item.Status.ACCEPTED)),
        rejected=Count("id", filter=Q(status=Item.Status.REJECTED)),
        failed=Count("id", filter=Q(status=Item.Status.FAILED)),
        open=Count("id", filter=Q(status__in=[Item.Status.PENDING, Item.Status.CLAIMED])),
    )
    finished = job.status in (TransformationJob.Status.DONE, TransformationJob.Status.CANCELLED)
    return TransformationProgress(finished=finished, **counts)


def transformation_items(
    job: TransformationJob, status: str | None = None, min_total: int | None = None
) -> QuerySet[TransformationItem]:
    """The job's items in source order; ``min_total`` keeps accepted rewrites whose judge total
    (this job's judge and prompt) is at least that."""
    items = Item.objects.filter(job=job).select_related("source", "result").order_by("source_id")
    if status:
        items = items.filter(status=status)
    if min_total is not None:
        items = items.filter(
            status=Item.Status.ACCEPTED,
            result__quality_scores__job=job,
            result__quality_scores__total__gte=min_total,
        ).distinct()
    return items


def scores_by_dialogue(job: TransformationJob, dialogue_ids) -> dict[int, QualityScore]:
    return {
        s.dialogue_id: s for s in QualityScore.objects.filter(job=job, dialogue_id__in=list(dialogue_ids))
    }


def rejection_summary(job: TransformationJob) -> list[tuple[str, int]]:
    """(reason code, count) over rejected and failed items, most frequent first."""
    rows = (
        Item.objects.filter(job=job, status__in=[Item.Status.REJECTED, Item.Status.FAILED])
        .values("reason_code")
        .annotate(n=Count("id"))
        .order_by("-n", "reason_code")
    )
    return [(row["reason_code"], row["n"]) for row in rows]


def finetune_jobs(study: Study) -> QuerySet[FineTuneJob]:
    return FineTuneJob.objects.filter(study=study).select_related("base_model", "result_model")


def finetune_for(user, slug: str, pk: int) -> FineTuneJob:
    job = finetune_jobs(study_for(user, slug)).filter(pk=pk).select_related("study").first()
    if job is None:
        raise Http404("No such fine-tuning job.")
    return job


def prompts() -> QuerySet[PromptTemplate]:
    return PromptTemplate.objects.all().order_by("kind", "name", "-version")


def prompt_for(pk: int) -> PromptTemplate:
    prompt = PromptTemplate.objects.filter(pk=pk).first()
    if prompt is None:
        raise Http404("No such prompt.")
    return prompt


def training_job_of(model) -> FineTuneJob | None:
    """The fine-tuning job that produced a registered model, if the platform trained it."""
    return FineTuneJob.objects.filter(result_model=model).select_related("study", "base_model").first()


# --- choosing dialogues -------------------------------------------------------------------------


def select_dialogues(
    study: Study,
    *,
    split: str | None = None,
    external_ids: Sequence[str] | None = None,
    derived_only: bool = False,
    min_judge_total: int | None = None,
) -> QuerySet[Dialogue]:
    """A study's dialogues by split and/or external ids; optionally only derived ones, or only those
    a judge scored at least ``min_judge_total`` (any judge, any prompt version). Unknown ids raise."""
    qs = Dialogue.objects.filter(study=study)
    if split:
        if split not in Dialogue.Split.values:
            raise ActionError(f"Unknown split '{split}'; use one of {', '.join(Dialogue.Split.values)}.")
        qs = qs.filter(split=split)
    if external_ids:
        wanted = [e.strip() for e in external_ids if e.strip()]
        found = set(qs.filter(external_id__in=wanted).values_list("external_id", flat=True))
        missing = [e for e in wanted if e not in found]
        if missing:
            where = f" in the '{split}' split" if split else ""
            raise ActionError(f"Unknown dialogue id(s){where}: {', '.join(missing[:10])}.")
        qs = qs.filter(external_id__in=wanted)
    if derived_only:
        qs = qs.filter(derived_from__isnull=False)
    if min_judge_total is not None:
        qs = qs.filter(quality_scores__total__gte=min_judge_total).distinct()
    return qs.order_by("id")


def turn_pairs(dialogues: Iterable[Dialogue]) -> dict[int, list[tuple[str, str]]]:
    """``{dialogue id: [(speaker, text), ...]}`` in turn order, in one query."""
    pairs: dict[int, list[tuple[str, str]]] = {}
    ids = [d.pk for d in dialogues]
    for dialogue_id, speaker, text in (
        Turn.objects.filter(dialogue_id__in=ids)
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "speaker", "text")
    ):
        pairs.setdefault(dialogue_id, []).append((speaker, text))
    return pairs
