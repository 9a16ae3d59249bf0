"""``manage.py test_model NAME``: the deep check of a registered model plus one tiny generation, here."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inference import actions, registry
from inference.models import RegisteredModel


class Command(BaseCommand):
    help = (
        "Check a registered model (paths, chat template, server) and generate a few tokens in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The registered model's name.")

    def handle(self, *args, name: str, **options):
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            raise CommandError(f"No registered model named '{name}'.")
        for problem in registry.problems_for(model, deep=False):
            if not problem.fatal:
                self.stdout.write(self.style.WARNING(f"warning {problem.code}: {problem.message}"))
        problems = actions.test_model(model)
        if problems:
            raise CommandError(f"Model '{name}' is not ready:\n  - " + "\n  - ".join(problems))
        self.stdout.write(self.style.SUCCESS(f"Model '{name}' is ready: it loaded and generated a reply."))
