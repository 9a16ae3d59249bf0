"""``manage.py import_annomi_labels STUDY AnnoMI-full.csv``: AnnoMI expert labels as a coding round.

Thin: the work is ``annotation.actions.import_annomi_round``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation import actions, parsers
from annotation.models import GoldSet, Study


class Command(BaseCommand):
    help = "Import AnnoMI-full.csv labels as a coding round with one coder per annotator_id."

    def add_arguments(self, parser):
        parser.add_argument("study", help="slug of the study")
        parser.add_argument("path", help="path of AnnoMI-full.csv")
        parser.add_argument("--round-name", default="AnnoMI expert labels")
        parser.add_argument("--user", help="username recorded as the round's creator")
        parser.add_argument("--gold-set", help="also mark one coding per transcript as gold in this gold set "
                            "(created in the study if missing; docs/calibration.md)")
        parser.add_argument("--gold-limit", type=int, help="only the first N transcripts become gold")

    def handle(self, *args, study: str, path: str, round_name: str, user: str | None, gold_set: str | None = None,
               gold_limit: int | None = None, **options):
        target = Study.objects.filter(slug=study).first()
        if target is None:
            raise CommandError(f"No study with the slug '{study}'.")
        creator = None
        if user:
            creator = get_user_model().objects.filter(username=user).first()
            if creator is None:
                raise CommandError(f"No user named '{user}'.")
        try:
            result = actions.import_annomi_round(target, path, round_name=round_name, created_by=creator)
        except (parsers.ImportFormatError, actions.ActionError) as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}. Nothing was imported.") from None
        self.stdout.write(
            f"Round '{result.coding_round.name}' (id {result.coding_round.pk}): {result.transcripts} transcripts, "
            f"{result.coders} annotators, {result.assignments} submitted codings, {result.codes} utterance codes; "
            f"{result.multi_coded} transcripts coded by several annotators; "
            f"{result.dialogues_imported} dialogues imported."
        )
        if gold_set:
            target_set = GoldSet.objects.filter(study=target, name=gold_set).first()
            try:
                if target_set is None:
                    target_set = actions.create_gold_set(target, name=gold_set, actor=creator)
                golds = actions.mark_imported_round_gold(target_set, result.coding_round, actor=creator,
                                                         limit=gold_limit)
            except actions.ActionError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Gold set '{target_set.name}': {len(golds)} gold transcripts (no globals: AnnoMI has none).")
        for warning in result.warnings[:20]:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
