"""``manage.py create_round STUDY --name N --source LABEL … [--coder U …]``: open a coding round.

Thin: allocation, checks and the write are ``annotation.actions.create_coding_round``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation import actions
from annotation.models import GoldSet, Membership, RoundGoldPolicy, Study, TranscriptSource


class Command(BaseCommand):
    help = "Create a coding round over transcript sources, balanced across coders, with a recorded seed."

    def add_arguments(self, parser):
        parser.add_argument("study", help="slug of the study")
        parser.add_argument("--name", required=True)
        parser.add_argument("--source", action="append", default=[], help="source label (repeatable)")
        parser.add_argument(
            "--reference", action="store_true",
            help="use the reference source, creating its transcripts from the test split if needed",
        )
        parser.add_argument("--coder", action="append", default=[], help="username (repeatable; default: all coders)")
        parser.add_argument("--overlap", type=float, default=0.2, help="double-coded share 0–1 (default 0.2)")
        parser.add_argument("--per-overlap", type=int, default=2, help="coders per double-coded transcript")
        parser.add_argument("--seed", type=int, help="default: drawn at random (printed and recorded)")
        parser.add_argument("--require-proficiency", action="store_true",
                            help="leave out coders below the study's proficiency standard (docs/calibration.md)")
        parser.add_argument("--gold-set", help="name of the gold set to seed from (the study's, else site-wide)")
        parser.add_argument("--gold-rate", type=float, default=0.0, help="seeded gold transcripts per transcript, 0–1")

    def handle(self, *args, study: str, name: str, source: list[str], reference: bool, coder: list[str],
               overlap: float, per_overlap: int, seed: int | None, require_proficiency: bool = False,
               gold_set: str | None = None, gold_rate: float = 0.0, **options):
        target = Study.objects.filter(slug=study).first()
        if target is None:
            raise CommandError(f"No study with the slug '{study}'.")
        sources = []
        if reference:
            sources.append(actions.ensure_reference_source(target))
        for label in source:
            found = TranscriptSource.objects.filter(study=target, label=label).first()
            if found is None:
                known = ", ".join(TranscriptSource.objects.filter(study=target).values_list("label", flat=True))
                raise CommandError(f"No source labelled '{label}' in {study} (known: {known or 'none'}).")
            sources.append(found)
        users = get_user_model().objects.filter(memberships__study=target, memberships__role=Membership.Role.CODER)
        if coder:
            found_users = {u.username: u for u in get_user_model().objects.filter(username__in=coder)}
            unknown = [u for u in coder if u not in found_users]
            if unknown:
                raise CommandError(f"No user named {', '.join(unknown)}.")
            coders = [found_users[u] for u in coder]
        else:
            coders = list(users.order_by("username"))
        chosen_set = None
        if gold_set:
            chosen_set = (GoldSet.objects.filter(study=target, name=gold_set).first()
                          or GoldSet.objects.filter(study__isnull=True, name=gold_set).first())
            if chosen_set is None:
                raise CommandError(f"No gold set named '{gold_set}'.")
        try:
            coding_round = actions.create_coding_round(
                target, name=name, sources=sources, coders=coders, overlap=overlap, seed=seed, per_overlap=per_overlap,
                require_proficiency=require_proficiency, gold_set=chosen_set, gold_rate=gold_rate,
            )
        except actions.ActionError as exc:
            raise CommandError(str(exc)) from None
        policy = RoundGoldPolicy.objects.filter(coding_round=coding_round).first()
        for left_out in policy.excluded if policy else []:
            self.stdout.write(self.style.WARNING(
                f"left out by the proficiency gate: {left_out['username']} ({'; '.join(left_out['reasons'])})"
            ))
        n = coding_round.assignments.count()
        self.stdout.write(
            f"Round '{coding_round.name}' (id {coding_round.pk}): {n} assignments for {len(coders)} coders, "
            f"overlap {coding_round.overlap:.0%}, seed {coding_round.seed}."
        )
