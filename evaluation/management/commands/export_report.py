"""``manage.py export_report --study SLUG --kind KIND --format FMT --out PATH``: write an export now.

Runs in this process (no worker needed) and calls the same ``evaluation.exports.write_export`` as the
export jobs, so a file made here equals one downloaded from the page.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ActionError
from annotation.models import CodingRound, Study
from evaluation import exports


class Command(BaseCommand):
    help = "Export MITI codes, summaries, aggregates, reliability, metrics or the MITI report of a study."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True, help="study slug")
        parser.add_argument("--kind", required=True, choices=sorted(exports.EXPORT_FORMATS))
        parser.add_argument("--format", required=True, choices=["csv", "xlsx", "jsonl", "pdf", "html"], dest="fmt")
        parser.add_argument(
            "--out", required=True,
            help="file to write (folders are created); several tables as CSV (aggregates, reliability, all) "
                 "are written as a zip of CSV files",
        )
        parser.add_argument("--round", type=int, default=None, help="coding round id (default: all rounds)")
        parser.add_argument("--blind", action="store_true", help="leave out source and model columns")

    def handle(self, *args, study: str, kind: str, fmt: str, out: str, round: int | None, blind: bool,
               **options) -> None:
        found = Study.objects.filter(slug=study).first()
        if found is None:
            raise CommandError(f"No study with the slug '{study}'.")
        coding_round = None
        if round is not None:
            coding_round = CodingRound.objects.filter(study=found, pk=round).first()
            if coding_round is None:
                raise CommandError(f"Study '{study}' has no coding round {round}.")
        started = time.perf_counter()
        try:
            rows = exports.write_export(found, kind, fmt, Path(out), coding_round=coding_round, blind=blind)
        except ActionError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.perf_counter() - started
        self.stdout.write(f"wrote {out}: {kind} as {fmt}, {rows} rows, {elapsed:.2f} s")
