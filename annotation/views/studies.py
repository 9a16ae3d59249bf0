"""Study pages: list, detail, create, members, import, splits, dialogues. Parse → act → render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from .. import actions, parsers, queries
from ..forms import IdSplitForm, ImportForm, MemberForm, RandomSplitForm, StudyForm
from ..models import Dialogue, Turn


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = queries.studies_for(request.user)
    roles = {s.pk: queries.role_in(request.user, s) for s in studies}
    rows = [(s, roles[s.pk]) for s in studies]
    can_create = request.user.has_perm("annotation.add_study")
    return render(request, "annotation/study_list.html", {"rows": rows, "can_create": can_create})


@login_required
@permission_required("annotation.add_study", raise_exception=True)
@require_http_methods(["GET", "POST"])
def study_create(request: HttpRequest) -> HttpResponse:
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = actions.create_study(created_by=request.user, **form.cleaned_data)
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Study created."))
            return redirect("study-detail", slug=study.slug)
    return render(request, "annotation/study_form.html", {"form": form})


@login_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug)
    role = queries.role_in(request.user, study)
    context = {"study": study, "role": role, "is_coordinator": role == queries.COORDINATOR}
    if context["is_coordinator"]:
        context["counts"] = queries.study_with_counts(study)
        context["imports"] = study.imports.all()[:10]
        context["rounds"] = study.rounds.all()
        context["sources"] = study.sources.all()
    return render(request, "annotation/study_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def study_members(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("remove"):
            try:
                actions.remove_membership(study, request.POST["remove"])
                messages.success(request, _("Member removed."))
            except actions.ActionError as exc:
                messages.error(request, str(exc))
            return redirect("study-members", slug=slug)
        if form.is_valid():
            try:
                actions.set_membership(study, form.cleaned_data["username"], form.cleaned_data["role"])
                messages.success(request, _("Member saved."))
                return redirect("study-members", slug=slug)
            except actions.ActionError as exc:
                form.add_error(None, str(exc))
    return render(request, "annotation/members.html", {"study": study, "members": queries.members_of(study), "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def study_import(request: HttpRequest, slug: str) -> HttpResponse:
    """The import form. A valid upload is stored and queued; the answer is the batch's status page."""
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                batch = actions.request_import(
                    study, upload=upload, filename=upload.name,
                    fmt=form.cleaned_data["format"] or None, split=form.cleaned_data["split"] or None,
                    options=form.import_options(), created_by=request.user,
                )
            except (parsers.ImportFormatError, actions.ActionError) as exc:
                form.add_error(None, str(exc))
                status = 400
            else:
                return redirect("import-status", slug=slug, pk=batch.pk)
        else:
            status = 400
    context = {"study": study, "form": form, "imports": study.imports.all()[:5]}
    return render(request, "annotation/import.html", context, status=status)


@login_required
@require_GET
def import_status(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One import's progress: the status partial while HTMX polls it, the whole page otherwise."""
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    batch = queries.import_batch_for(request.user, study, pk)
    context = {
        "study": study,
        "batch": batch,
        "percent": round(batch.progress * 100),
        "writing": batch.writing,
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return render(request, "annotation/import_status.html#status", context)
    return render(request, "annotation/import_status.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def study_split(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    random_form = RandomSplitForm(request.POST if request.POST.get("mode") == "random" else None)
    ids_form = IdSplitForm(request.POST if request.POST.get("mode") == "ids" else None)
    if request.method == "POST":
        try:
            if request.POST.get("mode") == "random" and random_form.is_valid():
                counts = actions.split_randomly(study, **random_form.cleaned_data)
                messages.success(request, _("Split done: %(c)s") % {"c": counts})
                return redirect("study-detail", slug=slug)
            if request.POST.get("mode") == "ids" and ids_form.is_valid():
                raw = ids_form.cleaned_data["external_ids"].replace(",", "\n").splitlines()
                n = actions.split_by_ids(study, split=ids_form.cleaned_data["split"], external_ids=raw)
                messages.success(request, ngettext("%(n)d dialogue moved.", "%(n)d dialogues moved.", n) % {"n": n})
                return redirect("study-detail", slug=slug)
        except actions.ActionError as exc:
            messages.error(request, str(exc))
    return render(request, "annotation/split.html", {"study": study, "random_form": random_form, "ids_form": ids_form})


@login_required
def dialogue_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    qs = queries.dialogues_for(request.user, study).order_by("id")
    split = request.GET.get("split")
    if split not in Dialogue.Split.values:
        split = None  # an unknown value shows every dialogue, as the run pages' filters do
    if split:
        qs = qs.filter(split=split)
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    return render(request, "annotation/dialogue_list.html", {"study": study, "page": page, "split": split})


@login_required
def dialogue_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = queries.study_for(request.user, slug, role=queries.COORDINATOR)
    dialogue = get_object_or_404(queries.dialogues_for(request.user, study), pk=pk)
    turns = Turn.objects.filter(dialogue=dialogue).order_by("index")
    return render(request, "annotation/dialogue_detail.html", {"study": study, "dialogue": dialogue, "turns": turns})
