"""Pages of machine coders (coordinators): list and register, a coder's provenance and validation,
adding it to a round, its runs with their failed volleys. Parse → act → render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from annotation.errors import ActionError

from . import actions, queries
from .forms import AddToRoundForm, RegisterCoderForm
from .models import MachineCoder


@login_required
@require_http_methods(["GET", "POST"])
def coder_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for_coders(request.user, slug)
    form = RegisterCoderForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["kind"] == MachineCoder.Kind.CLASSIFIER:
                coder = actions.register_classifier(
                    study, name=data["name"], training_round=data["training_round"], seed=data["seed"],
                    folds=data["folds"], created_by=request.user,
                )
                messages.success(request, _("Machine coder registered; its training is queued."))
            else:
                coder = actions.register_llm_coder(
                    study, name=data["name"], model=data["model"], codebook=data["codebook"], created_by=request.user
                )
                messages.success(request, _("Machine coder registered."))
        except ActionError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("machine-coder-detail", slug=study.slug, pk=coder.pk)
    context = {"study": study, "coders": queries.coders_of(study), "form": form}
    return render(request, "inference/machine_coders.html", context)


def _detail_context(coder: MachineCoder, form: AddToRoundForm | None = None) -> dict:
    validation = coder.validation or {}
    labels = validation.get("labels") or []
    confusion = list(zip(labels, validation.get("confusion") or [], strict=False))
    return {
        "study": coder.study, "coder": coder, "validation": validation, "confusion": confusion, "labels": labels,
        "runs": queries.runs_of(coder), "form": form or AddToRoundForm(study=coder.study),
        "polling": coder.status in (MachineCoder.Status.QUEUED, MachineCoder.Status.TRAINING),
    }


@login_required
def coder_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    coder = queries.coder_for(request.user, slug, pk)
    return render(request, "inference/machine_coder_detail.html", _detail_context(coder))


@login_required
@require_POST
def coder_add_to_round(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    coder = queries.coder_for(request.user, slug, pk)
    form = AddToRoundForm(request.POST, study=coder.study)
    if form.is_valid():
        try:
            actions.start_coding_run(coder, form.cleaned_data["coding_round"], created_by=request.user)
        except ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The machine coder is coding the round."))
            return redirect("machine-coder-detail", slug=slug, pk=coder.pk)
    return render(request, "inference/machine_coder_detail.html", _detail_context(coder, form), status=400)


@login_required
@require_POST
def coder_retrain(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    coder = queries.coder_for(request.user, slug, pk)
    try:
        actions.retrain(coder)
    except ActionError as exc:
        messages.error(request, str(exc))
    return redirect("machine-coder-detail", slug=slug, pk=coder.pk)


@login_required
def run_detail(request: HttpRequest, slug: str, pk: int, run_pk: int) -> HttpResponse:
    coder = queries.coder_for(request.user, slug, pk)
    run = queries.run_for(coder, run_pk)
    context = {"study": coder.study, "coder": coder, "run": run, "failed": queries.failed_items(run)}
    return render(request, "inference/machine_coding_run.html", context)


@login_required
@require_POST
def run_retry(request: HttpRequest, slug: str, pk: int, run_pk: int) -> HttpResponse:
    coder = queries.coder_for(request.user, slug, pk)
    run = queries.run_for(coder, run_pk)
    count = actions.retry_failed(run)
    messages.success(
        request,
        ngettext("%(count)d failed volley queued again.", "%(count)d failed volleys queued again.", count)
        % {"count": count},
    )
    return redirect("machine-coding-run", slug=slug, pk=coder.pk, run_pk=run.pk)
