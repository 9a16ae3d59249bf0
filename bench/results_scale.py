"""Benchmark: results that keep up at 10,000 transcripts (issue 12). Not a test: prints times and ratios.

The shape of ``evaluation_scale.py`` scaled by 5: 10,000 transcripts (5,000 reference + 5,000 from a
model) × 2 coders × 20 volleys × 3 utterances = 20,000 submitted assignments, 600,000 utterances,
1,200,000 utterance codes, 80,000 global ratings, written in chunks with bulk_create; then the stored
summaries of every coding are written by ``annotation.actions.summaries.store_summaries`` (what the
submit action calls) and timed as a backfill. Then, in the same run:

* **baseline**: what a results page computed on every view before summaries were stored — tally every
  code, aggregate, reliability (the stored rows hidden inside a rolled-back transaction);
* **results overview** (``GET /studies/<slug>/results/`` through Django's test client, logged in as
  a coordinator): the first view after a change (fills the results cache), then warm views —
  target ≤ 1 s warm, printed with its ratio to the baseline;
* **Tables page** (``GET /studies/<slug>/results/tables/``), when the build has it: the same;
* **submit**: reopen + submit one coding, 15 times with the stored summary written in the submit's
  transaction and 15 times without (alternating), target: the stored summary adds ≤ 20 ms;
* **long-format export** written by the worker's task body (``evaluation.actions.run_export_job``):
  CSV and Parquet (target ≤ 15 s each for 1,200,000 rows) and XLSX (split into sheets at Excel's
  1,048,576 rows).

Run: ``.venv/bin/python bench/results_scale.py [--transcripts 10000]`` — SQLite in a temporary folder
unless ``DATABASE_URL`` is set (the figures in docs/benchmarks.md are on PostgreSQL; the study is
deleted afterwards unless ``--keep``). ``--transcripts 400`` is the quick size ``scripts/bench.sh``
uses. Exit status 1 when a target is missed (at any size).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from evaluation_scale import _setup  # noqa: E402 - after the path is set

CHUNK_TRANSCRIPTS = 500


def build_study(n_transcripts: int, volleys: int, per_volley: int, seed: int = 1):
    """The synthetic study (evaluation_scale.py's shape), written chunk by chunk to bound memory."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from annotation import miti
    from annotation.models import (
        Assignment,
        CodingRound,
        Dialogue,
        GlobalRating,
        Membership,
        Study,
        Transcript,
        TranscriptSource,
        Utterance,
        UtteranceCode,
        Volley,
    )

    rng = random.Random(seed)
    users = get_user_model()
    suffix = f"{os.getpid()}-{int(time.time())}"
    coders = [users.objects.create(username=f"bench-coder-{i}-{suffix}") for i in range(2)]
    coordinator = users.objects.create(username=f"bench-coordinator-{suffix}")
    codes = [*miti.CODE_KEYS, miti.NO_CODE]
    weights = [8, 2, 1, 20, 14, 10, 4, 2, 2, 1, 16]
    study = Study.objects.create(name=f"Bench {suffix}", slug=f"bench-{suffix}", change_goal="quit smoking")
    Membership.objects.bulk_create(
        [Membership(study=study, user=u, role="coder") for u in coders]
        + [Membership(study=study, user=coordinator, role="coordinator")]
    )
    reference = TranscriptSource.objects.create(study=study, kind="reference", label="Reference dialogues")
    model = TranscriptSource.objects.create(study=study, kind="generated", label="bench-model")
    coding_round = CodingRound.objects.create(study=study, name="Bench round", overlap=1.0, seed=seed)
    coding_round.sources.set([reference, model])
    coding_round.coders.set(coders)
    now = timezone.now()
    counts = dict.fromkeys(("transcripts", "utterances", "assignments", "codes", "globals"), 0)
    n_dialogues = n_transcripts // 2
    for start in range(0, n_dialogues, CHUNK_TRANSCRIPTS // 2):
        stop = min(start + CHUNK_TRANSCRIPTS // 2, n_dialogues)
        with transaction.atomic():
            dialogues = Dialogue.objects.bulk_create(
                [Dialogue(study=study, external_id=f"d{i}", split="test") for i in range(start, stop)]
            )
            transcripts = Transcript.objects.bulk_create(
                [
                    Transcript(source=src, dialogue=d, blind_code=f"B{suffix[-6:]}{start + i:05d}{s}",
                               segmentation_locked=True)
                    for s, src in enumerate((reference, model))
                    for i, d in enumerate(dialogues)
                ]
            )
            volley_rows = Volley.objects.bulk_create(
                [Volley(transcript=t, index=v, text="…") for t in transcripts for v in range(volleys)],
                batch_size=5000,
            )
            utterances = Utterance.objects.bulk_create(
                [
                    Utterance(volley=v, index=u, text=f"这是第{v.index + 1}个话轮的第{u + 1}句话，用于基准测试。")
                    for v in volley_rows
                    for u in range(per_volley)
                ],
                batch_size=5000,
            )
            assignments = Assignment.objects.bulk_create(
                [
                    Assignment(coding_round=coding_round, transcript=t, coder=c, position=start * 2 + i,
                               status="submitted", version=1, started_at=now, submitted_at=now)
                    for c in coders
                    for i, t in enumerate(transcripts)
                ]
            )
            by_transcript: dict[int, list[Utterance]] = {}
            for u in utterances:
                by_transcript.setdefault(u.volley.transcript_id, []).append(u)
            code_rows: list[UtteranceCode] = []
            first_coder: dict[int, str] = {}
            for a in assignments:
                agree = a.coder_id != coders[0].pk
                for u in by_transcript[a.transcript_id]:
                    code = first_coder[u.pk] if agree and rng.random() < 0.75 else rng.choices(codes, weights)[0]
                    if not agree:
                        first_coder[u.pk] = code
                    code_rows.append(UtteranceCode(assignment=a, utterance=u, code=code))
            UtteranceCode.objects.bulk_create(code_rows, batch_size=5000)
            GlobalRating.objects.bulk_create(
                [GlobalRating(assignment=a, scale=key, value=rng.randint(2, 5)) for a in assignments
                 for key in miti.GLOBAL_KEYS],
                batch_size=5000,
            )
        counts["transcripts"] += len(transcripts)
        counts["utterances"] += len(utterances)
        counts["assignments"] += len(assignments)
        counts["codes"] += len(code_rows)
        counts["globals"] += len(assignments) * 4
    return study, coding_round, [*coders, coordinator], counts


def reuse_study(slug: str):
    """A study a previous run kept (``--keep``): its round, coders then coordinator, and its sizes."""
    from annotation.models import Assignment, GlobalRating, Membership, Study, Utterance, UtteranceCode

    study = Study.objects.get(slug=slug)
    coding_round = study.rounds.get()
    members = Membership.objects.filter(study=study).select_related("user").order_by("role", "user_id")
    users = [m.user for m in members if m.role == "coder"] + [m.user for m in members if m.role == "coordinator"]
    counts = {
        "transcripts": coding_round.assignments.values("transcript_id").distinct().count(),
        "utterances": Utterance.objects.filter(volley__transcript__source__study=study).count(),
        "assignments": Assignment.objects.filter(coding_round=coding_round).count(),
        "codes": UtteranceCode.objects.filter(assignment__coding_round=coding_round).count(),
        "globals": GlobalRating.objects.filter(assignment__coding_round=coding_round).count(),
    }
    return study, coding_round, users, counts


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - t0, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transcripts", type=int, default=10000)
    parser.add_argument("--volleys", type=int, default=20)
    parser.add_argument("--utterances", type=int, default=3, help="utterances per volley")
    parser.add_argument("--submits", type=int, default=15, help="submits timed with and without the stored summary")
    parser.add_argument("--keep", action="store_true", help="keep the study (PostgreSQL)")
    parser.add_argument("--skip-pages", action="store_true",
                        help="skip the baseline and the page views (time the submit and the exports only)")
    parser.add_argument("--study", help="reuse this kept bench study (slug) instead of building one; implies --keep")
    args = parser.parse_args()
    if args.study:
        args.keep = True
    failed: list[str] = []

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ.setdefault("MI_EXPORT_DIR", str(tmp / "exports"))
        vendor = _setup(tmp)
        from django.db import transaction
        from django.test import Client
        from django.urls import NoReverseMatch, reverse

        from annotation import actions as annotation_actions
        from annotation.actions import coding as coding_actions
        from annotation.actions.summaries import store_summaries
        from annotation.models import Assignment, AssignmentSummary
        from evaluation import actions as evaluation_actions
        from evaluation.models import ExportJob
        from evaluation.reliability_data import study_reliability
        from evaluation.summaries import load_summaries, study_aggregates

        t0 = time.perf_counter()
        if args.study:
            study, coding_round, users, counts = reuse_study(args.study)
            print(f"database: {vendor}; reusing study {study.slug}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        else:
            study, coding_round, users, counts = build_study(args.transcripts, args.volleys, args.utterances)
            print(f"database: {vendor}; built the study in {time.perf_counter() - t0:.1f} s: "
                  + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
        coordinator = users[-1]
        if vendor == "postgresql":  # fresh bulk-loaded tables: plan with statistics, as autovacuum would
            from django.db import connection as db

            with db.cursor() as cursor:
                cursor.execute("ANALYZE")
        import krippendorff  # noqa: F401 - one-time imports, paid once per process
        import scipy.stats  # noqa: F401
        import sklearn.metrics  # noqa: F401

        ids = list(
            Assignment.objects.filter(coding_round=coding_round, summary__isnull=True).values_list("id", flat=True)
        )
        t0 = time.perf_counter()
        stored = 0
        for start in range(0, len(ids), 2000):
            with transaction.atomic():
                stored += store_summaries(ids[start:start + 2000])
        print(f"stored summaries of {stored:,} submitted codings without one (backfill, store_summaries in batches of "
              f"2,000): {time.perf_counter() - t0:.2f} s", flush=True)

        if not args.skip_pages:
            # Baseline: the per-view computation before summaries were stored, on the same data.
            with transaction.atomic():
                AssignmentSummary.objects.filter(assignment__coding_round=coding_round).delete()
                t0 = time.perf_counter()
                data = load_summaries(study)
                study_aggregates(data)
                study_reliability(data, per_code=False)
                baseline = time.perf_counter() - t0
                transaction.set_rollback(True)
            print(f"baseline (every view before: tally every code + aggregates + reliability): {baseline:.2f} s",
                  flush=True)

            client = Client()
            client.force_login(coordinator)

            def page(url: str, label: str) -> None:
                first, response = _timed(client.get, url, HTTP_HOST="localhost")
                assert response.status_code == 200, (url, response.status_code)
                warm = []
                for _ in range(3):
                    t, response = _timed(client.get, url, HTTP_HOST="localhost")
                    assert response.status_code == 200
                    warm.append(t)
                best, median = min(warm), statistics.median(warm)
                verdict = "PASS" if median <= 1.0 else "FAIL"
                if verdict == "FAIL":
                    failed.append(label)
                print(f"{label}: first view after a change {first:.2f} s; warm median {median:.3f} s (best {best:.3f} s) "
                      f"(target ≤ 1 s) {verdict}; ratio warm/baseline {median / baseline:.3f}", flush=True)

            page(reverse("eval-dashboard", args=[study.slug]), "RESULTS OVERVIEW")
            try:
                tables_url = reverse("eval-tables", args=[study.slug])
            except NoReverseMatch:
                print("Tables page: not in this build")
            else:
                page(tables_url, "TABLES PAGE")

        # Submit with and without the stored summary, alternating, on the same codings.
        real_store = coding_actions.store_summaries
        targets = list(
            Assignment.objects.filter(coding_round=coding_round, status="submitted").order_by("id")[: args.submits * 2]
        )
        with_store: list[float] = []
        without_store: list[float] = []
        for i, target in enumerate(targets):
            reopened = annotation_actions.reopen_assignment(target, actor=coordinator)
            store = i % 2 == 0
            coding_actions.store_summaries = real_store if store else (lambda _ids, **_kw: 0)
            try:
                t, _ = _timed(annotation_actions.submit_assignment, reopened, version=reopened.version,
                              actor=reopened.coder)
            finally:
                coding_actions.store_summaries = real_store
            (with_store if store else without_store).append(t)
        store_summaries([t.pk for t in targets])
        added = (statistics.median(with_store) - statistics.median(without_store)) * 1000
        verdict = "PASS" if added <= 20 else "FAIL"
        if verdict == "FAIL":
            failed.append("submit")
        print(f"SUBMIT: median {statistics.median(with_store) * 1000:.1f} ms with the stored summary, "
              f"{statistics.median(without_store) * 1000:.1f} ms without ({len(with_store)} each, alternating): "
              f"adds {added:.1f} ms (target ≤ 20 ms) {verdict}; ratio {statistics.median(with_store) / statistics.median(without_store):.2f}")

        # The long-format export, written by the worker's task body.
        n_codes = counts["codes"]
        for fmt, target_s in (("csv", 15.0), ("parquet", 15.0), ("xlsx", None)):
            job = ExportJob.objects.create(study=study, requested_by=coordinator, kind="codes", format=fmt)
            t, summary = _timed(evaluation_actions.run_export_job, job.pk)
            job.refresh_from_db()
            assert job.status == "done", (fmt, job.error)
            size = Path(job.file_path).stat().st_size / 1e6
            extra = ""
            if fmt == "xlsx":
                with zipfile.ZipFile(job.file_path) as book:
                    sheets = sum(1 for n in book.namelist() if n.startswith("xl/worksheets/sheet"))
                extra = f"; {sheets} sheet(s) (Excel holds 1,048,575 data rows per sheet)"
            verdict = ""
            if target_s is not None:
                verdict = f" (target ≤ {target_s:.0f} s) " + ("PASS" if t <= target_s else "FAIL")
                if t > target_s:
                    failed.append(f"export {fmt}")
            print(f"LONG-FORMAT {fmt.upper()} by the worker: {job.rows:,} rows of {n_codes:,} codes, {size:.1f} MB "
                  f"in {t:.2f} s{verdict}{extra}")

        if not args.keep and vendor != "sqlite":
            t0 = time.perf_counter()
            study.delete()
            for user in users:
                user.delete()
            print(f"deleted the bench study in {time.perf_counter() - t0:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if failed:
        print("missed targets: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
