"""``manage.py import_dialogues STUDY PATH``: import a file, folder or zip of dialogues into a study.

Thin: all checks and the all-or-nothing write live in ``annotation.actions.import_dialogues``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from annotation import actions, parsers
from annotation.models import Dialogue, Study


class Command(BaseCommand):
    help = "Import dialogues (JSONL, CPsyCounD text/folder/zip, PsyDTCorpus, ShareGPT, Alpaca, AnnoMI CSV)."

    def add_arguments(self, parser):
        parser.add_argument("study", help="slug of the study")
        parser.add_argument("path", help="a file, a folder of files, or a zip")
        parser.add_argument("--format", dest="fmt", choices=parsers.FORMATS, help="skip detection")
        parser.add_argument("--split", choices=Dialogue.Split.values, help="put every dialogue in this split")

    def handle(self, *args, study: str, path: str, fmt: str | None, split: str | None, **options):
        target = Study.objects.filter(slug=study).first()
        if target is None:
            raise CommandError(f"No study with the slug '{study}'.")
        started = time.perf_counter()
        try:
            batch = actions.import_dialogues(target, path=path, fmt=fmt, split=split)
        except (parsers.ImportFormatError, actions.ActionError) as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}. Nothing was imported.") from None
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Imported {batch.dialogue_count} dialogues ({batch.round_count} rounds, format {batch.format}) "
            f"into {target.slug} in {seconds:.1f} s."
        )
        if batch.duplicates:
            self.stdout.write(f"{len(batch.duplicates)} flagged as content duplicates (kept, not dropped):")
            for dup, first in batch.duplicates.items():
                self.stdout.write(f"  {dup} = {first}")
        for warning in batch.warnings[:20]:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        if len(batch.warnings) > 20:
            self.stdout.write(self.style.WARNING(f"… and {len(batch.warnings) - 20} more warnings"))
