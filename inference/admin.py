from __future__ import annotations

from django.contrib import admin, messages

from . import models


@admin.register(models.RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "base_model", "adapter_path", "is_finetuned", "created_at"]
    list_filter = ["backend", "is_finetuned"]
    search_fields = ["name", "base_model"]


@admin.register(models.GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "model", "split", "status", "created_at", "finished_at"]
    list_filter = ["status", "study", "model"]
    actions = ["resume_runs", "cancel_runs"]

    @admin.action(description="Resume (re-enqueue pending and failed items)")
    def resume_runs(self, request, queryset):
        from . import actions as run_actions

        for run in queryset:
            run_actions.resume_run(run, retry_failed=True)
        messages.success(request, f"{queryset.count()} run(s) resumed.")

    @admin.action(description="Cancel")
    def cancel_runs(self, request, queryset):
        from . import actions as run_actions

        for run in queryset:
            run_actions.cancel_run(run)
        messages.success(request, f"{queryset.count()} run(s) cancelled.")


@admin.register(models.GenerationItem)
class GenerationItemAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "dialogue", "round_index", "status", "attempts", "completion_tokens", "latency_ms"]
    list_filter = ["status", "run"]
    raw_id_fields = ["dialogue", "run"]
