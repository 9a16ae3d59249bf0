from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from annotation.models import Dialogue, Study

from . import models


class AdminStartRunForm(forms.Form):
    """The admin's "start a generation run" step: which study and split, and the chunk size."""

    study = forms.ModelChoiceField(queryset=Study.objects.order_by("name"), label=_("Study"))
    split = forms.ChoiceField(choices=Dialogue.Split.choices, initial=Dialogue.Split.TEST, label=_("Split"))
    chunk_size = forms.IntegerField(min_value=1, max_value=512, initial=8, label=_("Chunk size"))


@admin.register(models.RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "base_model", "adapter_path", "is_finetuned", "created_at"]
    list_filter = ["backend", "is_finetuned"]
    search_fields = ["name", "base_model"]
    actions = ["start_generation_runs"]

    @admin.action(description=_("Start a generation run with the selected models…"), permissions=["start"])
    def start_generation_runs(self, request, queryset):
        """Two steps, as Django's delete action: pick study/split/chunk size, then one run per model.

        Each run goes through ``actions.start_run``, which refuses bad input with nothing created;
        one refused model does not stop the others.
        """
        from . import actions as run_actions

        form = AdminStartRunForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            study, split = form.cleaned_data["study"], form.cleaned_data["split"]
            for model in queryset.order_by("name"):
                try:
                    run = run_actions.start_run(
                        study, model, split=split, chunk_size=form.cleaned_data["chunk_size"], created_by=request.user
                    )
                except run_actions.ActionError as error:
                    self.message_user(request, f"{model.name}: {error}", messages.ERROR)
                else:
                    # A link to the run's page, where its progress shows (the admin has no such view).
                    self.message_user(
                        request,
                        format_html(
                            '{}: <a href="{}">run {}</a> started on {} ({}).',
                            model.name, reverse("run-detail", args=[study.slug, run.pk]), run.pk, study.slug, split,
                        ),
                        messages.SUCCESS,
                    )
            return None  # back to the change list, with the messages
        context = {
            **self.admin_site.each_context(request),
            "title": _("Start a generation run"),
            "opts": self.model._meta,
            "models": queryset.order_by("name"),
            "form": form,
            "action_name": "start_generation_runs",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/inference/start_run.html", context)

    def has_start_permission(self, request) -> bool:
        # Starting a run creates GenerationRun rows: the admin's "add generation run" permission.
        return request.user.has_perm("inference.add_generationrun")


@admin.register(models.GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "model", "split", "status", "progress", "page", "created_at", "finished_at"]
    list_filter = ["status", "study", "model"]
    actions = ["resume_runs", "cancel_runs"]

    def get_queryset(self, request):
        # done/total in the same query as the list (one COUNT each, grouped), not two queries per row.
        return (
            super()
            .get_queryset(request)
            .select_related("study", "model")
            .annotate(
                n_items=Count("items"),
                n_done=Count("items", filter=Q(items__status=models.GenerationItem.Status.DONE)),
                n_failed=Count("items", filter=Q(items__status=models.GenerationItem.Status.FAILED)),
            )
        )

    @admin.display(description=_("Done / total"), ordering="n_done")
    def progress(self, run) -> str:
        text = f"{run.n_done}/{run.n_items}"
        return f"{text}, {run.n_failed} failed" if run.n_failed else text

    @admin.display(description=_("Run page"))
    def page(self, run) -> str:
        return format_html('<a href="{}">{}</a>', reverse("run-detail", args=[run.study.slug, run.pk]), _("open"))

    @admin.action(description="Resume (re-enqueue pending and failed items)")
    def resume_runs(self, request, queryset):
        from . import actions as run_actions

        for run in queryset:
            run_actions.resume_run(run, retry_failed=True)
        n = queryset.count()
        messages.success(request, ngettext("%(n)d run resumed.", "%(n)d runs resumed.", n) % {"n": n})

    @admin.action(description="Cancel")
    def cancel_runs(self, request, queryset):
        from . import actions as run_actions

        for run in queryset:
            run_actions.cancel_run(run)
        n = queryset.count()
        messages.success(request, ngettext("%(n)d run cancelled.", "%(n)d runs cancelled.", n) % {"n": n})


@admin.register(models.GenerationItem)
class GenerationItemAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "dialogue", "round_index", "status", "attempts", "completion_tokens", "latency_ms"]
    list_filter = ["status", "run"]
    raw_id_fields = ["dialogue", "run"]
