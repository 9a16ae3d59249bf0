"""``manage.py import_dialogues STUDY PATH``: import a file, folder or zip of dialogues into a study.

Synchronous by default (parse and write here, all or nothing). ``--async`` stores the file — a folder
packed into a zip — under ``MI_IMPORT_DIR`` and queues it for a worker, as the page and the API do.
Thin: all checks and the write live in ``annotation.actions``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from annotation import actions, parsers
from annotation.models import Dialogue, Study


class Command(BaseCommand):
    help = (
        "Import dialogues (JSONL, CPsyCounD text/folder/zip, PsyDTCorpus, ShareGPT, Alpaca, OpenAI chat, "
        "speaker-prefixed text or JSON lists, AnnoMI CSV, dialogue_id/speaker/text CSV or Parquet)."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="slug of the study")
        parser.add_argument("path", help="a file, a folder of files, or a zip")
        parser.add_argument("--format", dest="fmt", choices=parsers.FORMATS, help="skip detection")
        parser.add_argument("--split", choices=Dialogue.Split.values, help="put every dialogue in this split")
        parser.add_argument("--client-prefix", default="",
                            help="speaker-prefixed files: the client's name (e.g. 求助者); CSV/Parquet: its value")
        parser.add_argument("--counselor-prefix", default="",
                            help="the counselor's name or value (e.g. 支持者); give both prefixes or neither")
        parser.add_argument("--dialogue-column", default="dialogue_id", help="CSV/Parquet dialogue id column")
        parser.add_argument("--speaker-column", default="speaker", help="CSV/Parquet speaker column")
        parser.add_argument("--text-column", default="text", help="CSV/Parquet text column")
        parser.add_argument("--merge-consecutive", action="store_true",
                            help="role-tagged formats: merge two turns of one speaker in a row (with a warning) "
                                 "instead of refusing the record")
        parser.add_argument("--async", dest="in_background", action="store_true",
                            help="queue the import for a worker and return at once (prints the batch id)")

    def handle(self, *args, study: str, path: str, fmt: str | None, split: str | None, **options):
        target = Study.objects.filter(slug=study).first()
        if target is None:
            raise CommandError(f"No study with the slug '{study}'.")
        import_options = parsers.ImportOptions(
            client_prefix=options["client_prefix"], counselor_prefix=options["counselor_prefix"],
            merge_consecutive=options["merge_consecutive"], dialogue_column=options["dialogue_column"],
            speaker_column=options["speaker_column"], text_column=options["text_column"],
        )
        started = time.perf_counter()
        try:
            if options["in_background"]:
                batch = actions.request_import(target, path=path, fmt=fmt, split=split, options=import_options)
            else:
                batch = actions.import_dialogues(target, path=path, fmt=fmt, split=split, options=import_options)
        except (parsers.ImportFormatError, actions.ActionError) as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}. Nothing was imported.") from None
        if options["in_background"]:
            self.stdout.write(
                f"Queued import {batch.pk} of {batch.filename} into {target.slug}; follow it at "
                f"/studies/{target.slug}/imports/{batch.pk}/ or /api/studies/{target.slug}/imports/{batch.pk}/."
            )
            return
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Imported {batch.dialogue_count} dialogue{'s' * (batch.dialogue_count != 1)} ({batch.round_count} "
            f"round{'s' * (batch.round_count != 1)}, format {batch.format}) "
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
