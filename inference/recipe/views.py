"""Pages of the MI-LLM recipe (coordinators): transformation jobs, prompts, exports, fine-tuning
jobs, and the provenance of fine-tuned models. Parse → act → render.

Job pages poll their progress partial with HTMX every 2 s while the job is open; a finished job's
partial has no trigger, so polling stops by itself. Every polled element also has a plain link.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from annotation import queries as annotation_queries
from inference import queries as inference_queries
from inference.recipe.models import FineTuneJob, PromptTemplate, TransformationItem

from . import actions, charts, queries, transform
from .forms import ExportForm, FineTuneForm, PromptForm, TransformationForm

Item = TransformationItem


@login_required
def recipe_home(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug)
    transformations = [
        (j, queries.transformation_progress(j)) for j in queries.transformation_jobs(study)[:50]
    ]
    context = {
        "study": study,
        "transformations": transformations,
        "finetunes": queries.finetune_jobs(study)[:50],
    }
    return render(request, "inference/recipe/home.html", context)


# --- transformation -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def transform_start(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug)
    actions.ensure_default_prompts()
    form = TransformationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = actions.start_transformation(
                    study,
                    data["model"],
                    prompt=data["prompt"],
                    split=data["split"] or None,
                    external_ids=data["external_ids"] or None,
                    output_split=data["output_split"],
                    judge_model=data["judge_model"],
                    judge_prompt=data["judge_prompt"],
                    chunk_size=data["chunk_size"],
                    max_new_tokens=data["max_new_tokens"],
                    created_by=request.user,
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Transformation started."))
                return redirect("recipe-transform-detail", slug=slug, pk=job.pk)
        status = 400
    return render(
        request, "inference/recipe/transform_form.html", {"study": study, "form": form}, status=status
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@login_required
def transform_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    job = queries.transformation_for(request.user, slug, pk)
    context = {
        "study": job.study,
        "job": job,
        "progress": queries.transformation_progress(job),
        "reasons": queries.rejection_summary(job),
    }
    if getattr(request, "htmx", False):
        return render(request, "inference/recipe/transform_detail.html#progress", context)
    status = request.GET.get("status", "")
    if status not in Item.Status.values:
        status = ""
    min_total = _int_or_none(request.GET.get("min_total"))
    page = Paginator(queries.transformation_items(job, status or None, min_total), 100).get_page(
        request.GET.get("page")
    )
    scores = queries.scores_by_dialogue(job, [i.result_id for i in page if i.result_id])
    context.update(
        {
            "page": page,
            "rows": [(item, scores.get(item.result_id)) for item in page],
            "status_filter": status,
            "statuses": Item.Status.choices,
            "min_total": min_total,
            "judge_totals": range(10),
        }
    )
    return render(request, "inference/recipe/transform_detail.html", context)


@login_required
def transform_item(request: HttpRequest, slug: str, pk: int, item_pk: int) -> HttpResponse:
    """Original and transformed dialogue side by side, round by round (or the raw output and why
    it was rejected)."""
    job = queries.transformation_for(request.user, slug, pk)
    item = queries.transformation_item(job, item_pk)
    source = transform.source_rounds(list(item.source.turns.order_by("index").values_list("speaker", "text")))
    derived = list(item.result.turns.order_by("index").values_list("speaker", "text")) if item.result else []
    rounds = []
    for number in range(len(source) // 2):
        rounds.append(
            {
                "number": number + 1,
                "client": source[2 * number][1],
                "original": source[2 * number + 1][1],
                "rewritten": derived[2 * number + 1][1] if len(derived) > 2 * number + 1 else None,
            }
        )
    score = queries.scores_by_dialogue(job, [item.result_id]).get(item.result_id) if item.result_id else None
    context = {"study": job.study, "job": job, "item": item, "rounds": rounds, "score": score}
    return render(request, "inference/recipe/transform_item.html", context)


@login_required
@require_POST
def transform_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    job = queries.transformation_for(request.user, slug, pk)
    if actions.cancel_transformation(job):
        messages.success(request, _("Job cancelled; chunks already running finish their dialogues."))
    else:
        messages.error(request, _("The job has already finished."))
    return redirect("recipe-transform-detail", slug=slug, pk=pk)


@login_required
@require_POST
def transform_retry(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    job = queries.transformation_for(request.user, slug, pk)
    item_pk = _int_or_none(request.POST.get("item"))
    count = actions.retry_transformation(job, [item_pk] if item_pk is not None else None)
    messages.success(request, _("%(count)d dialogue(s) sent again.") % {"count": count})
    return redirect("recipe-transform-detail", slug=slug, pk=pk)


# --- prompts ------------------------------------------------------------------------------------


@login_required
def prompt_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug)
    actions.ensure_default_prompts()
    return render(
        request, "inference/recipe/prompt_list.html", {"study": study, "prompts": queries.prompts()}
    )


@login_required
@require_http_methods(["GET", "POST"])
def prompt_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    """Edit a prompt: saving always creates a new version (or version 1 of a new name)."""
    study = queries.study_for(request.user, slug)
    base = queries.prompt_for(pk) if pk is not None else None
    initial = (
        {"name": base.name, "kind": base.kind, "text": base.text}
        if base
        else {"kind": PromptTemplate.Kind.TRANSFORM}
    )
    form = PromptForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                prompt = actions.save_prompt_version(
                    data["name"], data["text"], data["kind"], note=data["note"], created_by=request.user
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Saved %(prompt)s.") % {"prompt": prompt})
                return redirect("recipe-prompts", slug=slug)
        status = 400
    context = {"study": study, "form": form, "base": base}
    return render(request, "inference/recipe/prompt_form.html", context, status=status)


# --- export -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def export_training(request: HttpRequest, slug: str) -> HttpResponse:
    """Download a split as a zip of LLaMA-Factory files (ShareGPT, Alpaca, dataset_info.json).

    Written in the request: the export is a pure pass over the split's turns (CPsyCounD's 3,134
    dialogues take well under a second), not model work.
    """
    study = queries.study_for(request.user, slug)
    form = ExportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                with tempfile.TemporaryDirectory() as folder:
                    result = actions.export_training_data(
                        study,
                        Path(folder),
                        split=data["split"],
                        name=data["name"],
                        system_prompt=data["system_prompt"],
                        derived_only=data["derived_only"],
                        min_judge_total=data["min_judge_total"],
                    )
                    buffer = io.BytesIO()
                    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                        for path in (result.sharegpt_path, result.alpaca_path, result.dataset_info_path):
                            archive.write(path, arcname=path.name)
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                response = HttpResponse(buffer.getvalue(), content_type="application/zip")
                filename = f"{study.slug}-{data['split']}-{data['name']}-llamafactory.zip"
                response["Content-Disposition"] = f'attachment; filename="{filename}"'
                response["X-Export-Counts"] = f"dialogues={result.dialogues}; rounds={result.rounds}"
                return response
        status = 400
    return render(request, "inference/recipe/export.html", {"study": study, "form": form}, status=status)


# --- fine-tuning --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def finetune_start(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug)
    form = FineTuneForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = actions.start_finetune(
                    study,
                    data["base_model"],
                    output_name=data["output_name"],
                    split=data["split"],
                    derived_only=data["derived_only"],
                    min_judge_total=data["min_judge_total"],
                    hyperparameters=form.hyperparameters(),
                    system_prompt=data["system_prompt"] or None,
                    queue=data["queue"],
                    created_by=request.user,
                )
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Fine-tuning queued."))
                return redirect("recipe-finetune-detail", slug=slug, pk=job.pk)
        status = 400
    return render(
        request, "inference/recipe/finetune_form.html", {"study": study, "form": form}, status=status
    )


def _finetune_context(job: FineTuneJob) -> dict:
    points = list(job.steps.order_by("step").values_list("step", "loss"))
    return {
        "study": job.study,
        "job": job,
        "chart": charts.loss_chart_svg(
            points,
            title=_("training loss"),
            empty_note=_("no training steps logged yet"),
            caption=_("step (last loss {loss})"),
            non_finite=lambda n: ngettext(
                "%(n)s non-finite step not drawn", "%(n)s non-finite steps not drawn", n
            ) % {"n": n},
        ),
        "last_loss": points[-1][1] if points else None,
        "first_loss": points[0][1] if points else None,
        "finished": job.status
        in (FineTuneJob.Status.DONE, FineTuneJob.Status.FAILED, FineTuneJob.Status.STOPPED),
        "percent": 100.0 * job.current_step / job.total_steps if job.total_steps else 0.0,
    }


@login_required
def finetune_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    job = queries.finetune_for(request.user, slug, pk)
    context = _finetune_context(job)
    if getattr(request, "htmx", False):
        return render(request, "inference/recipe/finetune_detail.html#progress", context)
    return render(request, "inference/recipe/finetune_detail.html", context)


@login_required
@require_POST
def finetune_stop(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    job = queries.finetune_for(request.user, slug, pk)
    if actions.request_finetune_stop(job):
        messages.success(request, _("Stop requested: training stops after the current step."))
    else:
        messages.error(request, _("The job has already finished."))
    return redirect("recipe-finetune-detail", slug=slug, pk=pk)


# --- provenance ---------------------------------------------------------------------------------


@login_required
def model_provenance(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a fine-tuned model comes from: base model, training data, hyperparameters, its job.

    The job link is shown only to coordinators of the study that trained it (and staff)."""
    model = inference_queries.model_for(request.user, pk)
    job = queries.training_job_of(model)
    can_see_job = job is not None and (
        request.user.is_staff or annotation_queries.is_coordinator(request.user, job.study)
    )
    context = {
        "model": model,
        "job": job if can_see_job else None,
        "hyperparameters": sorted((model.provenance or {}).get("hyperparameters", {}).items()),
        "provenance": sorted((k, v) for k, v in (model.provenance or {}).items() if k != "hyperparameters"),
    }
    return render(request, "inference/recipe/model_provenance.html", context)
