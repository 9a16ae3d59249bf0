"""``manage.py generate --study SLUG --model NAME``: start a generation run (the workers do the work)."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Study
from inference import actions, queries
from inference.models import RegisteredModel


class Command(BaseCommand):
    help = "Start generating a study split's rounds with a registered model; --wait follows it to the end."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--model", required=True, help="Registered model name.")
        parser.add_argument("--split", default="test")
        parser.add_argument("--chunk-size", type=int, default=8)
        parser.add_argument("--user", default=None, help="Username recorded as the run's starter.")
        parser.add_argument("--wait", action="store_true", help="Print progress until the run finishes.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after S seconds.")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with the slug '{options['study']}'.")
        model = RegisteredModel.objects.filter(name=options["model"]).first()
        if model is None:
            raise CommandError(f"No registered model named '{options['model']}'.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named '{options['user']}'.")
        try:
            run = actions.start_run(
                study, model, split=options["split"], chunk_size=options["chunk_size"], created_by=user
            )
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
        total = run.items.count()
        self.stdout.write(f"Run {run.pk} started: {total} rounds on queue '{run.queue}'.")
        if options["wait"]:
            self._wait(run, options["timeout"])

    def _wait(self, run, timeout: float) -> None:
        started = time.monotonic()
        last = None
        while True:
            run.refresh_from_db()
            progress = queries.run_progress(run)
            line = f"{run.status}: {progress.done}/{progress.total} done, {progress.failed} failed"
            if line != last:
                self.stdout.write(line)
                last = line
            if progress.finished:
                break
            if timeout and time.monotonic() - started > timeout:
                raise CommandError(
                    f"Run {run.pk} still {run.status} after {timeout:g} s (it goes on in the workers)."
                )
            time.sleep(1)
        if run.status != run.Status.DONE:
            raise CommandError(f"Run {run.pk} ended {run.status}: {run.error}")
        rate = f", {progress.tokens_per_second:.1f} tokens/s" if progress.tokens_per_second else ""
        self.stdout.write(
            self.style.SUCCESS(f"Run {run.pk} done{rate}; transcripts created (source {run.source_id}).")
        )
