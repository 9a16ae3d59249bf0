"""``manage.py create_reference_study SLUG --corpus PATH``: the reference protocol in one step.

Thin: the steps are ``inference.reference``'s actions. Two steps, by design:

1. ``create_reference_study SLUG --corpus PATH [--format F]`` — the study, the corpus, a seeded
   2,000 train / 40 test split, the reference transcripts, the three released MI-LLMs
   (``kulaxiku/MI-LLM-Baichuan2_after_sft``, ``kulaxiku/MI-LLM-GLM4_after_sft``,
   ``kulaxiku/MI-LLM-LLama3-Chinese_after_sft``) on the vLLM backend, one round-based run each
   (queued for the GPU workers);
2. once the runs are done, ``create_reference_study SLUG --coding-round --coder U …`` — the coding
   round over the reference and the three generated sources (a follow-up command, not automatic:
   the runs take hours and the coders are chosen then).

Re-runnable: what exists is reused. ``gpu_preflight`` on a worker then says which weights are there.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ActionError
from annotation.models import Membership, Study
from inference import reference


class Command(BaseCommand):
    help = "Set up the reference study (models, seeded split, runs); with --coding-round, its coding round."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="slug of the study (created if missing)")
        parser.add_argument("--corpus", help="the dialogues to split (file, folder or zip in a supported format)")
        parser.add_argument("--format", default=None, help="import format (default: detected)")
        parser.add_argument(
            "--model", action="append", default=[],
            help="hub id or local folder (repeatable; default: the three released MI-LLMs)",
        )  # fmt: skip
        parser.add_argument("--n-train", type=int, default=reference.N_TRAIN)
        parser.add_argument("--n-test", type=int, default=reference.N_TEST)
        parser.add_argument("--seed", type=int, default=0, help="split seed (recorded on the study)")
        parser.add_argument("--chunk-size", type=int, default=40, help="rounds per GPU task (default 40)")
        parser.add_argument("--max-new-tokens", type=int, default=256)
        parser.add_argument("--no-runs", action="store_true", help="register the models, start no run")
        parser.add_argument(
            "--trust-remote-code",
            action="store_true",
            help="let the models run their repositories' own Python (Baichuan2 needs it; review that code first)",
        )
        parser.add_argument("--coordinator", default=None, help="username recorded as creator")
        parser.add_argument("--coding-round", action="store_true", help="the follow-up: create the coding round")
        parser.add_argument("--coder", action="append", default=[], help="username (repeatable; default: all coders)")
        parser.add_argument("--overlap", type=float, default=0.2)
        parser.add_argument("--round-seed", type=int, default=None)

    def handle(self, *args, slug, corpus, format, model, n_train, n_test, seed, chunk_size, max_new_tokens,
               no_runs, trust_remote_code, coordinator, coding_round, coder, overlap, round_seed, **options):  # fmt: skip
        users = get_user_model().objects
        creator = users.filter(username=coordinator).first() if coordinator else None
        if coordinator and creator is None:
            raise CommandError(f"No user named '{coordinator}'.")
        models = model or list(reference.REFERENCE_MODELS)
        try:
            if coding_round:
                self._coding_round(slug, models, coder, overlap, round_seed, creator)
                return
            if not corpus:
                raise CommandError("--corpus is required to set the study up (the 2,040 rewritten dialogues).")
            result = reference.create_reference_study(
                slug, corpus=corpus, fmt=format, models=models, n_train=n_train, n_test=n_test, seed=seed,
                chunk_size=chunk_size, max_new_tokens=max_new_tokens, start_runs=not no_runs, trust_remote_code=trust_remote_code, created_by=creator,
            )  # fmt: skip
        except ActionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"study {result.study.slug}: {result.imported} dialogues imported, split {result.split}")
        for registered in result.models:
            remote = ", runs its repository's code" if registered.engine_options.get("trust_remote_code") else ""
            self.stdout.write(f"model {registered.name}: vllm, {registered.base_model}{remote}")
        for run in result.runs:
            state = "started" if run in result.started else run.status
            self.stdout.write(f"run {run.pk} of {run.model.name}: {state}, {run.items.count()} rounds, queue {run.queue}")
        self.stdout.write(
            f"when the runs are done: python manage.py create_reference_study {result.study.slug} --coding-round "
            "--coder USER …"
        )

    def _coding_round(self, slug, models, coder, overlap, round_seed, creator):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"No study with the slug '{slug}'.")
        users = get_user_model().objects
        if coder:
            found = {u.username: u for u in users.filter(username__in=coder)}
            unknown = [u for u in coder if u not in found]
            if unknown:
                raise CommandError(f"No user named {', '.join(unknown)}.")
            coders = [found[u] for u in coder]
        else:
            coders = list(
                users.filter(memberships__study=study, memberships__role=Membership.Role.CODER).order_by("username")
            )
        coding_round = reference.create_reference_coding_round(
            study, coders=coders, models=models, overlap=overlap, seed=round_seed, created_by=creator
        )
        self.stdout.write(
            f"coding round '{coding_round.name}': {coding_round.assignments.count()} assignments, "
            f"seed {coding_round.seed}"
        )
