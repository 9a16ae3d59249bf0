"""``manage.py transform_dialogues --study SLUG --model NAME --split train``: MI-style rewrite job."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from inference.recipe import actions, queries
from inference.recipe.models import PromptTemplate

from ._recipe_common import in_this_process, model_named, study_named, user_named


def _prompt(spec: str | None, kind: str) -> PromptTemplate | None:
    """``NAME`` (latest version) or ``NAME:VERSION``."""
    if not spec:
        return None
    name, _, version = spec.partition(":")
    prompts = PromptTemplate.objects.filter(name=name, kind=kind).order_by("-version")
    if version:
        prompts = prompts.filter(version=int(version)) if version.isdigit() else prompts.none()
    prompt = prompts.first()
    if prompt is None:
        raise CommandError(f"No {kind} prompt '{spec}' (give NAME or NAME:VERSION).")
    return prompt


class Command(BaseCommand):
    help = (
        "Rewrite a study's dialogues MI-style with a registered model; accepted rewrites become new "
        "dialogues linked to their source. --here runs it in this process instead of the workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--model", required=True, help="Registered model that rewrites.")
        parser.add_argument("--split", default=None, help="Rewrite this split's dialogues.")
        parser.add_argument("--ids", default="", help="…or these external ids (comma-separated).")
        parser.add_argument(
            "--prompt", default=None, help="Rewrite prompt NAME or NAME:VERSION (default mi-rewrite v1)."
        )
        parser.add_argument("--output-split", default="train", help="Split of the new dialogues.")
        parser.add_argument("--judge-model", default=None, help="Score accepted rewrites with this model.")
        parser.add_argument("--judge-prompt", default=None, help="Judge prompt NAME or NAME:VERSION.")
        parser.add_argument("--chunk-size", type=int, default=4)
        parser.add_argument(
            "--max-new-tokens",
            type=int,
            default=None,
            help="Default: a quarter of the model's context, at most 2048 (refused if it leaves no room).",
        )
        parser.add_argument("--user", default=None, help="Username recorded as the job's starter.")
        parser.add_argument("--here", action="store_true", help="Run the chunks in this process (no worker).")
        parser.add_argument("--wait", action="store_true", help="Print progress until the job finishes.")

    def handle(self, *args, **options):
        study = study_named(options["study"])
        actions.ensure_default_prompts()
        ids = [part.strip() for part in options["ids"].split(",") if part.strip()]
        try:
            with in_this_process(options["here"]):
                job = actions.start_transformation(
                    study,
                    model_named(options["model"]),
                    prompt=_prompt(options["prompt"], PromptTemplate.Kind.TRANSFORM),
                    split=options["split"],
                    external_ids=ids or None,
                    output_split=options["output_split"],
                    judge_model=model_named(options["judge_model"]),
                    judge_prompt=_prompt(options["judge_prompt"], PromptTemplate.Kind.JUDGE),
                    chunk_size=options["chunk_size"],
                    max_new_tokens=options["max_new_tokens"],
                    created_by=user_named(options["user"]),
                )
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Transformation {job.pk} started: {job.items.count()} dialogues on queue '{job.queue}'."
        )
        if options["here"] or options["wait"]:
            self._wait(job)

    def _wait(self, job) -> None:
        last = None
        while True:
            job.refresh_from_db()
            progress = queries.transformation_progress(job)
            line = (
                f"{job.status}: {progress.accepted} accepted, {progress.rejected} rejected, "
                f"{progress.failed} failed of {progress.total}"
            )
            if line != last:
                self.stdout.write(line)
                last = line
            if progress.finished:
                break
            time.sleep(1)
        for code, count in queries.rejection_summary(job):
            self.stdout.write(f"  not kept: {code} x {count}")
