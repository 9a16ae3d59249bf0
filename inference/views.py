"""Pages of the model registry and of generation runs (coordinators). Parse → act → render.

The run page polls its progress partial with HTMX every 2 s while the run is open; the partial
rendered for a finished run has no trigger, so polling stops by itself. Without JavaScript the
"Refresh" link reloads the page.
"""

from __future__ import annotations

from celery.result import AsyncResult
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from annotation import queries as annotation_queries

from . import actions, claims, queries, registry
from .forms import MODEL_FIELDS, RegisteredModelForm, StartRunForm
from .models import GenerationItem
from .workers import worker_command

FAILED_SHOWN = 50


# --- registry -----------------------------------------------------------------------------------


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    models = queries.models_for(request.user)
    rows = [(m, registry.problems_for(m, deep=False)) for m in models]
    workers = queries.gpu_workers_for(request.user)
    context = {"rows": rows, "gpu_workers": workers, "gpu_command": worker_command("gpu")}
    return render(request, "inference/model_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def model_register(request: HttpRequest) -> HttpResponse:
    queries.models_for(request.user)  # permission
    form = RegisteredModelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k in MODEL_FIELDS}
        try:
            model = actions.register_model(created_by=request.user, **fields)
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Model registered."))
            return redirect("model-detail", pk=model.pk)
    return render(request, "inference/model_form.html", {"form": form})


@login_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = queries.model_for(request.user, pk)
    context = {
        "model": model,
        "problems": registry.problems_for(model, deep=False),
        "runs": queries.runs_of_model_for(request.user, model)[:50],
        "test_id": request.GET.get("test", ""),
    }
    if context["test_id"]:
        context["test"] = _test_state(context["test_id"], model.pk)
    return render(request, "inference/model_detail.html", context)


@login_required
@require_POST
def model_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send "test this model" to a worker of the model's queue; the page polls for the answer."""
    model = queries.model_for(request.user, pk)
    result = claims.send_task("inference.tasks.test_model", [model.pk], queue=registry.queue_for(model.backend))
    return redirect(f"{reverse('model-detail', args=[model.pk])}?test={result.id}")


@login_required
def model_test_result(request: HttpRequest, pk: int, task_id: str) -> HttpResponse:
    model = queries.model_for(request.user, pk)
    context = {"model": model, "test_id": task_id, "test": _test_state(task_id, model.pk)}
    return render(request, "inference/model_detail.html#test-result", context)


def _test_state(task_id: str, model_pk: int) -> dict:
    result = AsyncResult(task_id)
    if not result.ready():
        return {"state": "waiting"}
    if result.failed():
        return {"state": "error", "problems": [f"the test task failed: {result.result!r}"]}
    value = result.result if isinstance(result.result, dict) else {}
    if value.get("model") != model_pk:
        return {"state": "error", "problems": [_("This test result belongs to another model.")]}
    return {"state": "ok" if value.get("ok") else "problems", "problems": value.get("problems", [])}


# --- runs ---------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def study_generation(request: HttpRequest, slug: str) -> HttpResponse:
    """The study's runs and the form that starts one."""
    study = annotation_queries.study_for(request.user, slug, role=annotation_queries.COORDINATOR)
    form = StartRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = actions.start_run(
                study,
                form.cleaned_data["model"],
                split=form.cleaned_data["split"],
                chunk_size=form.cleaned_data["chunk_size"],
                created_by=request.user,
            )
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Generation started."))
            return redirect("run-detail", slug=slug, pk=run.pk)
    runs = [(run, queries.run_progress(run)) for run in queries.runs_for(request.user, study)[:50]]
    return render(request, "inference/study_generation.html", {"study": study, "form": form, "runs": runs})


def _progress_context(run) -> dict:
    return {
        "run": run,
        "progress": queries.run_progress(run),
        "failed_items": queries.run_items(run, GenerationItem.Status.FAILED)[:FAILED_SHOWN],
    }


@login_required
def run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    run = queries.run_for(request.user, slug, pk)
    context = _progress_context(run)
    status = request.GET.get("status", "")
    if status not in GenerationItem.Status.values:
        status = ""
    page = Paginator(queries.run_items(run, status or None), 100).get_page(request.GET.get("page"))
    context.update({"page": page, "status_filter": status, "statuses": GenerationItem.Status.choices})
    if getattr(request, "htmx", False):
        # The poll answers the progress card and, out of band, the rounds table: a round shows Done as
        # soon as the counts say so, and the last poll (run finished) leaves both final.
        return render(request, "inference/run_detail.html#progress", context | {"oob": True})
    return render(request, "inference/run_detail.html", context)


@login_required
@require_POST
def run_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    run = queries.run_for(request.user, slug, pk)
    if actions.cancel_run(run):
        messages.success(request, _("Run cancelled; chunks already running finish their rounds."))
    else:
        messages.error(request, _("The run has already finished."))
    return redirect("run-detail", slug=slug, pk=pk)


@login_required
@require_POST
def run_resume(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    run = queries.run_for(request.user, slug, pk)
    retry_failed = request.POST.get("retry_failed") == "1"
    count = actions.resume_run(run, retry_failed=retry_failed)
    messages.success(request, _("%(count)d round(s) sent to the workers.") % {"count": count})
    return redirect("run-detail", slug=slug, pk=pk)


@login_required
@require_POST
def item_retry(request: HttpRequest, slug: str, pk: int, item_pk: int) -> HttpResponse:
    run = queries.run_for(request.user, slug, pk)
    item = queries.item_for(run, item_pk)
    try:
        actions.retry_item(item)
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Round sent again."))
    return redirect("run-detail", slug=slug, pk=pk)
