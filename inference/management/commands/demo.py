"""``manage.py demo``: the whole embedded demo, re-runnable — users, study, dialogues, tiny model, a run.

Creates (or finds) demo-coordinator / demo-coder1 / demo-coder2, the study "MI demo" (slug mi-demo),
imports the demo dialogues with the file's own split (4 test, 4 train), creates the reference
transcripts, builds and registers the tiny model "demo-tiny" (transformers, greedy, seed 0) and
starts one generation run over the test split — enqueued for the worker. Running it again creates
nothing twice; passwords are printed only when a user is created or ``--password`` resets them.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation import actions as annotation_actions
from annotation.models import Dialogue, Study
from inference import actions
from inference.demo_model import DEFAULT_SYSTEM_PROMPT
from inference.models import GenerationRun, RegisteredModel

from .build_demo_model import DEMO_DIALOGUES, default_model_dir, ensure_demo_model, read_demo_dialogues

STUDY_SLUG = "mi-demo"
MODEL_NAME = "demo-tiny"
USERS = (("demo-coordinator", "coordinator"), ("demo-coder1", "coder"), ("demo-coder2", "coder"))


class Command(BaseCommand):
    help = "Set up the embedded demo (users, study, dialogues, tiny model, one generation run). Re-runnable."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", default=None, help="Use (and reset to) this password for all demo users."
        )
        parser.add_argument("--url", default=None, help="Site URL to print (default SITE_URL).")
        parser.add_argument("--steps", type=int, default=300, help="Training steps of the tiny model.")
        parser.add_argument("--model-dir", type=Path, default=None, help="Where the tiny model lives.")
        parser.add_argument("--no-run", action="store_true", help="Do not start a generation run.")

    def handle(self, *args, **options):
        from django.conf import settings

        url = (options["url"] or settings.SITE_URL).rstrip("/")
        logins = self._users(options["password"])
        study = self._study(logins)
        folder, built = ensure_demo_model(options["model_dir"] or default_model_dir(), steps=options["steps"])
        self.stdout.write(f"Tiny model {'built' if built else 'found'} in {folder}.")
        model = self._model(folder)
        run = None if options["no_run"] else self._run(study, model)

        self.stdout.write(self.style.SUCCESS("\nThe demo is ready."))
        self.stdout.write(f"  Study:  {url}/studies/{study.slug}/")
        if run is not None:
            self.stdout.write(
                f"  Run:    {url}/studies/{study.slug}/generation/runs/{run.pk}/  ({run.status})"
            )
        self.stdout.write("  Logins:")
        for username, password in logins.items():
            self.stdout.write(f"    {username:18} {password or '(existing user; password unchanged)'}")

    def _users(self, password: str | None) -> dict[str, str | None]:
        User = get_user_model()
        logins: dict[str, str | None] = {}
        for username, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                secret = password or secrets.token_urlsafe(9)
                user = User.objects.create_user(username=username, password=secret)
                logins[username] = secret
            elif password:
                user.set_password(password)
                user.save(update_fields=["password"])
                logins[username] = password
            else:
                logins[username] = None
            if role == "coordinator":
                user.user_permissions.add(Permission.objects.get(codename="add_study"))
        return logins

    @transaction.atomic
    def _study(self, logins) -> Study:
        User = get_user_model()
        coordinator = User.objects.get(username=USERS[0][0])
        study = Study.objects.filter(slug=STUDY_SLUG).first()
        if study is None:
            study = annotation_actions.create_study(
                name="MI demo",
                slug=STUDY_SLUG,
                language="zh",
                change_goal="the client's own health goal (quit smoking, drink less, eat well, exercise)",
                description="Embedded demo: 8 short dialogues (4 test, 4 train), a tiny locally built model.",
                created_by=coordinator,
            )
        annotation_actions.set_membership(study, USERS[0][0], "coordinator")
        for username, role in USERS[1:]:
            annotation_actions.set_membership(study, username, role)
        expected = len(read_demo_dialogues(DEMO_DIALOGUES))
        have = Dialogue.objects.filter(study=study, source_dataset="mi-platform-demo").count()
        if have == 0:
            annotation_actions.import_dialogues(study, path=str(DEMO_DIALOGUES), created_by=coordinator)
        elif have != expected:
            raise CommandError(
                f"Study {STUDY_SLUG} has {have} of the {expected} demo dialogues; remove it and rerun."
            )
        annotation_actions.ensure_reference_source(study)
        return study

    def _model(self, folder: Path) -> RegisteredModel:
        model = RegisteredModel.objects.filter(name=MODEL_NAME).first()
        if model is not None:
            if Path(model.base_model) != folder:
                self.stdout.write(
                    self.style.WARNING(
                        f"Model '{MODEL_NAME}' uses {model.base_model}, not {folder}; keeping it."
                    )
                )
            return model
        try:
            return actions.register_model(
                name=MODEL_NAME,
                backend=RegisteredModel.Backend.TRANSFORMERS,
                base_model=str(folder),
                system_prompt=DEFAULT_SYSTEM_PROMPT,
                temperature=0.0,
                seed=0,
                max_new_tokens=64,
                provenance={"built_by": "manage.py demo", "corpus": str(DEMO_DIALOGUES.name)},
            )
        except actions.ActionError as error:
            raise CommandError(str(error)) from error

    def _run(self, study: Study, model: RegisteredModel) -> GenerationRun:
        existing = (
            GenerationRun.objects.filter(study=study, model=model, split="test")
            .exclude(status=GenerationRun.Status.CANCELLED)
            .order_by("pk")
            .first()
        )
        if existing is not None:
            return existing
        coordinator = get_user_model().objects.get(username=USERS[0][0])
        try:
            return actions.start_run(study, model, split="test", chunk_size=4, created_by=coordinator)
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
