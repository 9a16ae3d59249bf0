"""``manage.py finetune --study SLUG --base-model NAME``: a LoRA fine-tuning job (the workers train)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from inference.recipe import actions
from inference.recipe.models import FineTuneJob

from ._recipe_common import in_this_process, model_named, study_named, user_named


def _settings(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value.strip()
    return values


class Command(BaseCommand):
    help = (
        "Queue LoRA SFT of a registered base model on a study split (loss on counselor turns); the "
        "adapter is registered as a new fine-tuned model. --here trains in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument(
            "--base-model", required=True, help="Registered base model (transformers or vllm)."
        )
        parser.add_argument("--output-name", default=None, help="Name to register the adapter under.")
        parser.add_argument("--split", default="train")
        parser.add_argument("--derived-only", action="store_true", help="Only derived (rewritten) dialogues.")
        parser.add_argument(
            "--min-judge-total", type=int, default=None, help="Only dialogues judged at least N."
        )
        parser.add_argument("--system-prompt", default=None, help="Default: the base model's system prompt.")
        parser.add_argument("--queue", default=None, help="Celery queue (default MI_FINETUNE_QUEUE or train).")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Hyperparameter, e.g. --set learning_rate=1e-4 --set num_epochs=3 --set lora_rank=8.",
        )
        parser.add_argument("--user", default=None, help="Username recorded as the job's starter.")
        parser.add_argument("--here", action="store_true", help="Train in this process (no worker).")
        parser.add_argument("--wait", action="store_true", help="Print progress until the job finishes.")

    def handle(self, *args, **options):
        study = study_named(options["study"])
        try:
            with in_this_process(options["here"]):
                job = actions.start_finetune(
                    study,
                    model_named(options["base_model"]),
                    output_name=options["output_name"],
                    split=options["split"],
                    derived_only=options["derived_only"],
                    min_judge_total=options["min_judge_total"],
                    hyperparameters=_settings(options["set"]),
                    system_prompt=options["system_prompt"],
                    queue=options["queue"] or ("cpu" if options["here"] else None),
                    created_by=user_named(options["user"]),
                )
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Fine-tuning job {job.pk}: {job.dialogue_count} dialogues on queue '{job.queue}'.")
        if options["here"] or options["wait"]:
            self._wait(job)

    def _wait(self, job: FineTuneJob) -> None:
        last = None
        finished = (FineTuneJob.Status.DONE, FineTuneJob.Status.FAILED, FineTuneJob.Status.STOPPED)
        while True:
            job.refresh_from_db()
            step = job.steps.order_by("-step").first()
            line = f"{job.status}: step {job.current_step}/{job.total_steps or '?'}"
            if step is not None:
                line += f", loss {step.loss:.4f}"
            if line != last:
                self.stdout.write(line)
                last = line
            if job.status in finished:
                break
            time.sleep(2)
        if job.status != FineTuneJob.Status.DONE:
            raise CommandError(f"Fine-tuning job {job.pk} ended {job.status}: {job.error}\n{job.log[-2000:]}")
        self.stdout.write(
            self.style.SUCCESS(f"Registered '{job.result_model.name}' (adapter {job.adapter_path}).")
        )
