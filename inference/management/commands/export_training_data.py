"""``manage.py export_training_data --study SLUG --split train --out DIR``: LLaMA-Factory files."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inference.recipe import actions

from ._recipe_common import study_named


class Command(BaseCommand):
    help = (
        "Write a split as LLaMA-Factory ShareGPT (one record per dialogue) and Alpaca-with-history "
        "(one record per round) JSON files plus dataset_info.json."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--split", default="train")
        parser.add_argument(
            "--out", required=True, type=Path, help="Folder to write into (created if needed)."
        )
        parser.add_argument("--name", default="mi", help="Dataset name prefix in dataset_info.json.")
        parser.add_argument("--system-prompt", default="", help="System prompt written into every record.")
        parser.add_argument("--derived-only", action="store_true", help="Only derived (rewritten) dialogues.")
        parser.add_argument(
            "--min-judge-total", type=int, default=None, help="Only dialogues judged at least N."
        )

    def handle(self, *args, **options):
        study = study_named(options["study"])
        try:
            result = actions.export_training_data(
                study,
                options["out"],
                split=options["split"],
                name=options["name"],
                system_prompt=options["system_prompt"] or None,
                derived_only=options["derived_only"],
                min_judge_total=options["min_judge_total"],
            )
        except actions.ActionError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{result.dialogues} dialogues -> {result.sharegpt_path}")
        self.stdout.write(f"{result.rounds} rounds -> {result.alpaca_path}")
        self.stdout.write(f"dataset_info -> {result.dataset_info_path}")
        if result.skipped:
            self.stdout.write(f"skipped (no round): {', '.join(result.skipped[:20])}")
