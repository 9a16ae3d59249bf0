"""``manage.py demo``: the whole embedded demo, re-runnable — users, study, dialogues, tiny model, a run,
a coding round with work done and work waiting.

Creates (or finds) demo-admin (site staff) / demo-coordinator / demo-coder1 / demo-coder2, the study
"MI demo" (slug mi-demo), imports the demo dialogues with the files' own split (8 test, 4 train),
creates the reference transcripts, builds (or reuses, when its inputs are unchanged) the tiny model
"demo-tiny" (transformers, greedy, seed 0), runs one generation over the test split — on the worker
(``make demo`` starts it first; the command waits, printing done/total), or here with ``--inline`` —
and then opens the coding round "Demo round" over the reference and generated transcripts with both
coders. Both coders code and submit the double-coded transcripts through the coding actions (enough
for every reliability figure to be estimable); the single-coded ones stay waiting in their queues.
Running it again creates nothing twice; passwords are printed only when a user is created or
``--password`` resets them.
"""

from __future__ import annotations

import random
import secrets
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation import actions as annotation_actions
from annotation import miti
from annotation.models import Assignment, CodingRound, Dialogue, Study, TranscriptSource, Utterance
from inference import actions
from inference.demo_model import DEFAULT_SYSTEM_PROMPT
from inference.models import GenerationItem, GenerationRun, RegisteredModel

from .build_demo_model import (
    DEFAULT_STEPS,
    DEMO_DIALOGUES,
    default_model_dir,
    ensure_demo_model,
    read_demo_dialogues,
)

# More test dialogues, so that the round has enough double-coded transcripts for reliability (at least
# evaluation.reliability.MIN_TARGETS = 10). The model is trained on DEMO_DIALOGUES only.
DEMO_CODING_DIALOGUES = DEMO_DIALOGUES.with_name("demo_dialogues_coding.jsonl")
STUDY_SLUG = "mi-demo"
MODEL_NAME = "demo-tiny"
ROUND_NAME = "Demo round"
ADMIN = "demo-admin"
USERS = (("demo-coordinator", "coordinator"), ("demo-coder1", "coder"), ("demo-coder2", "coder"))
# What each login is for, as printed at the end.
CAN_DO = {
    ADMIN: "site staff: every study as coordinator, the admin site (/admin/)",
    "demo-coordinator": "coordinator of MI demo: imports, runs, rounds, adjudication, results",
    "demo-coder1": "coder: 2 transcripts waiting in the queue (Coding), 12 submitted",
    "demo-coder2": "coder: 2 transcripts waiting in the queue (Coding), 12 submitted",
}
# 16 transcripts (8 test dialogues x reference + generated): 12 coded by both coders, 4 by one.
ROUND_OVERLAP = 0.75
ROUND_SEED = 20240601


class Command(BaseCommand):
    help = (
        "Set up the embedded demo (users, study, dialogues, tiny model, one generation run, a coding round "
        "with submitted and waiting work). Re-runnable."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", default=None, help="Use (and reset to) this password for all demo users."
        )
        parser.add_argument("--url", default=None, help="Site URL to print (default SITE_URL).")
        parser.add_argument(
            "--steps", type=int, default=DEFAULT_STEPS, help=f"Training steps of the tiny model ({DEFAULT_STEPS})."
        )
        parser.add_argument("--model-dir", type=Path, default=None, help="Where the tiny model lives.")
        parser.add_argument("--no-run", action="store_true", help="Start no generation run (and so no round).")
        parser.add_argument(
            "--inline", action="store_true", help="Generate in this process instead of waiting for the worker."
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Enqueue the run and return (no round until it is done)."
        )
        parser.add_argument(
            "--timeout", type=float, default=900.0, help="Seconds to wait for the worker (default 900)."
        )
        parser.add_argument(
            "--migrate", action="store_true", help="Apply the migrations first (one process fewer to start)."
        )

    def handle(self, *args, **options):
        from django.conf import settings

        self.started = time.monotonic()
        url = (options["url"] or settings.SITE_URL).rstrip("/")
        if options["migrate"]:
            self._migrate()
        self.step("Demo users")
        logins = self._users(options["password"])
        self.step("Demo study, dialogues and reference transcripts")
        study = self._study()
        self.step("Tiny model")
        folder, built = ensure_demo_model(
            options["model_dir"] or default_model_dir(), steps=options["steps"], progress=self._training
        )
        self.stdout.write(
            f"  Tiny model {'built' if built else 'found'} in {folder}"
            + ("." if built else " (same inputs: reused).")
        )
        model = self._model(folder)
        run = coding_round = None
        if not options["no_run"]:
            self.step("Generation run over the test split")
            run = self._run(study, model)
            if options["inline"]:
                self._generate_inline(run)
            elif not options["no_wait"]:
                self._wait(run, options["timeout"])
            run.refresh_from_db()
            if run.status == GenerationRun.Status.DONE:
                self.step("Coding round")
                coding_round = self._round(study, run)
            elif options["no_wait"]:
                self.stdout.write("  The run is queued; rerun this command when it is done to open the round.")
            else:
                raise CommandError(f"The generation run ended {run.status}: {run.error or 'see the run page'}.")

        self.stdout.write(
            self.style.SUCCESS(f"\nThe demo is ready ({time.monotonic() - self.started:.0f} s).")
        )
        self.stdout.write(f"  Study:  {url}/studies/{study.slug}/")
        if run is not None:
            self.stdout.write(
                f"  Run:    {url}/studies/{study.slug}/generation/runs/{run.pk}/  ({run.status})"
            )
        if coding_round is not None:
            self.stdout.write(f"  Round:  {url}/studies/{study.slug}/rounds/{coding_round.pk}/")
            self.stdout.write(f"  Results: {url}/studies/{study.slug}/results/")
        self.stdout.write("  Logins (user, password, what it can do):")
        for username, password in logins.items():
            self.stdout.write(f"    {username:18} {password or '(existing user; password unchanged)'}")
            self.stdout.write(f"    {'':18} {CAN_DO[username]}")

    # --- progress ---------------------------------------------------------------------------------
    def step(self, what: str) -> None:
        self.stdout.write(f"== {what}  (at {time.monotonic() - self.started:.0f} s)")
        self.stdout.flush()

    def _training(self, step: int, steps: int) -> None:
        # Ten lines, not one per step: the output may be a log file rather than a terminal.
        if step == steps or step % max(1, steps // 10) == 0:
            self.stdout.write(f"  Training the tiny model: step {step}/{steps}")
            self.stdout.flush()

    def _progress(self, run: GenerationRun, last: tuple[int, int] | None) -> tuple[int, int]:
        items = GenerationItem.objects.filter(run=run)
        now = (items.exclude(status__in=["pending", "claimed"]).count(), items.count())
        if now != last:
            self.stdout.write(f"  Generating replies: {now[0]}/{now[1]}")
            self.stdout.flush()
        return now

    # --- steps ------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        from django.core.management import call_command
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        n = len(plan)
        self.step(f"Database: {n} migration{'s' * (n != 1)} to apply" if n else "Database: up to date")
        if plan:
            call_command("migrate", interactive=False, verbosity=0)
    def _users(self, password: str | None) -> dict[str, str | None]:
        User = get_user_model()
        logins: dict[str, str | None] = {}
        for username, role in ((ADMIN, "admin"), *USERS):
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
            if role == "admin" and not (user.is_staff and user.is_superuser):
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
            if role == "coordinator":
                user.user_permissions.add(Permission.objects.get(codename="add_study"))
        return logins

    @transaction.atomic
    def _study(self) -> Study:
        User = get_user_model()
        coordinator = User.objects.get(username=USERS[0][0])
        study = Study.objects.filter(slug=STUDY_SLUG).first()
        if study is None:
            study = annotation_actions.create_study(
                name="MI demo",
                slug=STUDY_SLUG,
                language="zh",
                change_goal="the client's own health goal (quit smoking, drink less, eat well, exercise, sleep)",
                description="Embedded demo: 12 short dialogues (8 test, 4 train), a tiny locally built model.",
                created_by=coordinator,
            )
        annotation_actions.set_membership(study, USERS[0][0], "coordinator")
        for username, role in USERS[1:]:
            annotation_actions.set_membership(study, username, role)
        files = (DEMO_DIALOGUES, DEMO_CODING_DIALOGUES)
        expected = sum(len(read_demo_dialogues(path)) for path in files)
        have = Dialogue.objects.filter(study=study, source_dataset="mi-platform-demo").count()
        if have == 0:
            for path in files:
                annotation_actions.import_dialogues(study, path=str(path), created_by=coordinator)
        elif have != expected:
            raise CommandError(
                f"Study {STUDY_SLUG} has {have} of the {expected} demo dialogues; remove it and rerun."
            )
        annotation_actions.ensure_reference_source(study)
        self.stdout.write(f"  {expected} dialogues in study {STUDY_SLUG}.")
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
            # Chunks of 8: one batched backend call each, and a few progress steps on the way.
            return actions.start_run(study, model, split="test", chunk_size=8, created_by=coordinator)
        except actions.ActionError as error:
            raise CommandError(str(error)) from error

    def _generate_inline(self, run: GenerationRun) -> None:
        """The worker's own chunk function, called here: claim, generate, store, close the run."""
        from annotation.claims import chunked
        from inference.execute import execute_chunk

        ids = list(
            GenerationItem.objects.filter(run=run, status="pending").order_by("pk").values_list("pk", flat=True)
        )
        last = self._progress(run, None)
        for chunk in chunked(ids, run.chunk_size):
            execute_chunk(None, run.pk, chunk)
            last = self._progress(run, last)

    def _wait(self, run: GenerationRun, timeout: float) -> None:
        finished = {GenerationRun.Status.DONE, GenerationRun.Status.FAILED, GenerationRun.Status.CANCELLED}
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = self._progress(run, last)
            run.refresh_from_db(fields=["status"])
            if run.status in finished:
                return
            if time.monotonic() > deadline:
                raise CommandError(
                    f"The worker did not finish run {run.pk} within {timeout:.0f} s; see var/worker.log."
                )
            time.sleep(0.5)

    def _round(self, study: Study, run: GenerationRun) -> CodingRound:
        existing = CodingRound.objects.filter(study=study, name=ROUND_NAME).first()
        if existing is not None:
            self.stdout.write(f"  Round '{ROUND_NAME}' is there already.")
            return existing
        User = get_user_model()
        coordinator = User.objects.get(username=USERS[0][0])
        coders = list(User.objects.filter(username__in=[u for u, role in USERS if role == "coder"]).order_by("username"))
        sources = list(
            TranscriptSource.objects.filter(study=study, kind=TranscriptSource.Kind.REFERENCE)
        ) + [TranscriptSource.objects.get(pk=run.source_id)]
        coding_round = annotation_actions.create_coding_round(
            study,
            name=ROUND_NAME,
            sources=sources,
            coders=coders,
            overlap=ROUND_OVERLAP,
            seed=ROUND_SEED,
            created_by=coordinator,
        )
        n = code_double_coded(coding_round)
        self.stdout.write(
            f"  Round '{ROUND_NAME}': {coding_round.assignments.count()} assignments; "
            f"{n} transcripts coded and submitted by both coders, the rest waiting."
        )
        return coding_round


# --- the demo coders' work ------------------------------------------------------------------------
# Codes a second coder may give instead of the first coder's: the confusions coders really make.
NEAR = {
    "SR": "CR", "CR": "SR", "Q": "SEEK", "SEEK": "Q", "AF": "EMPHASIZE", "EMPHASIZE": "AF",
    "GI": miti.NO_CODE, miti.NO_CODE: "GI", "PERSUADE": "PERSUADE_WITH", "PERSUADE_WITH": "PERSUADE",
    "CONFRONT": "PERSUADE",
}
BASE_WEIGHTS = {
    "Q": 3.0, "SR": 2.0, "CR": 2.0, "AF": 1.0, "SEEK": 1.0, "EMPHASIZE": 1.0, "GI": 1.0,
    "PERSUADE": 0.8, "PERSUADE_WITH": 0.8, "CONFRONT": 0.5, miti.NO_CODE: 1.0,
}


def demo_codes(n_volleys_utterances: list[int], rng: random.Random) -> tuple[list[list[str]], list[list[str]], dict, dict]:
    """Plausible codes and globals of two coders for one transcript (utterances per volley given).

    Each transcript gets its own style (code weights drawn around a common profile, a global level),
    so transcripts differ; the second coder agrees on most utterances and, where not, picks a code
    coders often confuse with it, and rates globals within a point. The first utterance of the first
    volley is a reflection and of the last volley a question (both coders), so %CR and R:Q exist.
    """
    weights = {code: w * rng.lognormvariate(0, 0.8) for code, w in BASE_WEIGHTS.items()}
    keys = list(weights)
    first: list[list[str]] = []
    second: list[list[str]] = []
    for v, n in enumerate(n_volleys_utterances):
        a_volley, b_volley = [], []
        for u in range(n):
            if u == 0 and v == 0:
                a = b = rng.choice(["SR", "CR"])
            elif u == 0 and v == len(n_volleys_utterances) - 1:
                a = b = "Q"
            else:
                a = rng.choices(keys, weights=[weights[k] for k in keys])[0]
                b = a if rng.random() < 0.8 else NEAR[a]
            a_volley.append(a)
            b_volley.append(b)
        first.append(a_volley)
        second.append(b_volley)
    mi_spirit = sum(weights[k] for k in ("CR", "AF", "SEEK", "EMPHASIZE")) / sum(weights.values())
    level = 1 + 4 * min(1.0, mi_spirit * 2.2)
    globals_a, globals_b = {}, {}
    for key in miti.GLOBAL_KEYS:
        a = max(1, min(5, round(level + rng.uniform(-0.7, 0.7))))
        globals_a[key] = a
        globals_b[key] = max(1, min(5, a + rng.choice([-1, 0, 0, 0, 1])))
    return first, second, globals_a, globals_b


def code_double_coded(coding_round: CodingRound) -> int:
    """Both coders code and submit every transcript of the round they share, through the coding
    actions (versions, audit, stored summaries as a coder's own saves make them). Returns how many."""
    assignments = list(
        Assignment.objects.filter(coding_round=coding_round)
        .select_related("coding_round", "coder")
        .order_by("transcript_id", "coder__username")
    )
    by_transcript: dict[int, list[Assignment]] = {}
    for assignment in assignments:
        by_transcript.setdefault(assignment.transcript_id, []).append(assignment)
    shared = [pair for _tid, pair in sorted(by_transcript.items()) if len(pair) == 2]
    rng = random.Random(coding_round.seed)
    for pair in shared:
        utterances: dict[int, list[int]] = {}
        for volley_id, utterance_id in (
            Utterance.objects.filter(volley__transcript_id=pair[0].transcript_id)
            .order_by("volley__index", "index")
            .values_list("volley_id", "pk")
        ):
            utterances.setdefault(volley_id, []).append(utterance_id)
        volleys = list(utterances.values())
        codes_a, codes_b, globals_a, globals_b = demo_codes([len(v) for v in volleys], rng)
        for assignment, codes, ratings in ((pair[0], codes_a, globals_a), (pair[1], codes_b, globals_b)):
            version = assignment.version
            for volley, volley_codes in zip(volleys, codes, strict=True):
                for utterance_id, code in zip(volley, volley_codes, strict=True):
                    version = annotation_actions.save_code(
                        assignment, utterance_id=utterance_id, code=code, version=version,
                        actor=assignment.coder, tally=False,
                    ).version
            for scale, value in ratings.items():
                version = annotation_actions.set_global(
                    assignment, scale=scale, value=value, version=version, actor=assignment.coder
                ).version
            annotation_actions.submit_assignment(assignment, version=version, actor=assignment.coder)
    return len(shared)
