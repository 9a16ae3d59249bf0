"""Time a background import of the CPsyCounD folder (issue 13): the request that accepts the upload, and
the import task from its start to its commit, on PostgreSQL.

Usage: python bench/import_worker.py [--repeat N] [--data DIR] [--database-url URL] [--real-worker]
(or python bench/import_cpsycound.py --worker …). Each round zips the folder (3,134 files) in memory,
posts it to ``/studies/<slug>/import/`` as a logged-in coordinator with Django's test client — in this
process, so no network transfer is timed — and measures the server time of that request (from Django's
``request_started`` to ``request_finished``: multipart parsing, storing the upload under MI_IMPORT_DIR,
the ImportBatch row, the task sent after commit). Then the ``annotation.run_import`` task runs: by
default in this process through Celery's ``apply`` (the code a worker runs; broker ``memory://``), with
``--real-worker`` on a ``celery worker`` subprocess through Redis (``$REDIS_URL``). Task time is the
batch's ``finished_at - started_at`` (claim to the commit of the one write transaction). Counts are
checked (3,134 dialogues, 24,590 rounds). Targets: task ≤ 10 s, request ≤ 200 ms.

The database named by ``--database-url`` (default ``$MI_BENCH_DATABASE_URL`` or
``postgres://postgres@127.0.0.1:5432/mi_bench_imports``) is dropped and re-created: never point it at a
database you want to keep.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mi_bench_imports"
TASK_BUDGET_S = 10.0
REQUEST_BUDGET_MS = 200.0
EXPECTED = (3134, 24590)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def prepare_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    if not url.startswith(("postgres://", "postgresql://")) or name in {"", "postgres", "template0", "template1"}:
        raise SystemExit(f"--database-url must name a dedicated PostgreSQL database, got {url!r}")
    with psycopg.connect(_with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"Data/{path.name}")
    return buffer.getvalue()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    from mi_platform.celery import app

    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mi_platform", "worker", "-Q", "cpu", "-c", "1", "--pool", "solo",
         "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"celery worker exited at start; see {log}")
        try:
            if app.control.ping(timeout=1.0):
                return proc
        except Exception:  # noqa: BLE001 - the broker answers once the worker is up
            pass
    raise SystemExit("celery worker did not answer a ping within 60 s")


def main(argv: list[str] | None = None) -> int:
    default_data = Path(os.environ.get("MI_SHARED_DATA") or REPO / ".." / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed imports, each into a fresh study (default 3)")
    parser.add_argument("--data", type=Path, default=default_data, help="shared data folder")
    parser.add_argument("--database-url", default=os.environ.get("MI_BENCH_DATABASE_URL", DEFAULT_DB),
                        help=f"dedicated PostgreSQL database, dropped and re-created (default {DEFAULT_DB})")
    parser.add_argument("--real-worker", action="store_true",
                        help="run the task on a celery worker subprocess through Redis ($REDIS_URL)")
    args = parser.parse_args(argv)
    folder = args.data / "CPsyCounD" / "Data"
    if not folder.is_dir():
        print(f"CPsyCounD not found at {folder}; set MI_SHARED_DATA or pass --data", file=sys.stderr)
        return 2
    redis_url = os.environ.get("REDIS_URL", "")
    if args.real_worker and not redis_url:
        print("--real-worker needs REDIS_URL (the broker the worker listens on)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="mi-bench-import-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url, SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0",
        ALLOWED_HOSTS="testserver,localhost", MI_VAR_DIR=str(tmp / "var"), MI_IMPORT_DIR=str(tmp / "imports"),
        DJANGO_SETTINGS_MODULE="mi_platform.settings", PYTHONPATH=str(REPO),
        CELERY_BROKER_URL=redis_url if args.real_worker else "memory://",
        CELERY_RESULT_BACKEND=redis_url if args.real_worker else "cache+memory://",
    )
    os.environ.update(env)
    prepare_database(args.database_url)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.core.signals import request_finished, request_started
    from django.db import connection
    from django.test import Client

    from annotation import actions, tasks
    from annotation.models import ImportBatch

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench-coordinator", password=secrets.token_urlsafe(12))
    data = zip_folder(folder)
    version = connection.cursor().connection.info.server_version
    print("Background import benchmark (issue 13): CPsyCounD folder as one zip")
    print(f"machine: {os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"database: PostgreSQL {version // 10000}.{version % 10000} at {args.database_url}")
    print(f"upload: {len(data) / 1e6:.1f} MB zip of {sum(1 for _ in folder.iterdir())} files; task "
          f"{'on a celery worker (Redis)' if args.real_worker else 'in this process (Celery apply, memory broker)'}")

    marks: list[float] = []

    def mark(**_kwargs) -> None:
        marks.append(time.perf_counter())

    request_started.connect(mark)
    request_finished.connect(mark)
    worker = start_worker(env, tmp / "worker.log") if args.real_worker else None
    requests_ms: list[float] = []
    tasks_s: list[float] = []
    try:
        client = Client()
        client.force_login(user)
        # Unmeasured warm-up: the first request of a process loads URLconf, templates and the broker connection.
        warm = actions.create_study(name="Warm-up", slug="warm-up", change_goal="bench", created_by=user)
        first = sorted(folder.iterdir())[0]
        client.post(f"/studies/{warm.slug}/import/", {"file": SimpleUploadedFile(first.name, first.read_bytes())})
        warm_batch = ImportBatch.objects.get(study=warm)
        if worker is None:
            tasks.run_import.apply(args=[warm_batch.pk])
        while not ImportBatch.objects.get(pk=warm_batch.pk).finished:
            time.sleep(0.05)
        for i in range(max(1, args.repeat)):
            study = actions.create_study(name=f"Bench {i}", slug=f"bench-{i}", change_goal="bench", created_by=user)
            marks.clear()
            response = client.post(f"/studies/{study.slug}/import/",
                                   {"file": SimpleUploadedFile("CPsyCounD.zip", data, "application/zip")})
            if response.status_code != 302:
                raise SystemExit(f"the upload was refused ({response.status_code}): {response.content[:500]!r}")
            requests_ms.append((marks[-1] - marks[0]) * 1000)
            batch = ImportBatch.objects.get(study=study)
            if worker is None:
                tasks.run_import.apply(args=[batch.pk])
            deadline = time.time() + 300
            while not ImportBatch.objects.get(pk=batch.pk).finished:
                if time.time() > deadline:
                    raise SystemExit("the import did not end within 300 s")
                time.sleep(0.05)
            batch.refresh_from_db()
            if batch.status != "done" or (batch.dialogue_count, batch.round_count) != EXPECTED:
                raise SystemExit(f"unexpected outcome: {batch.status} {batch.dialogue_count} dialogues, "
                                 f"{batch.round_count} rounds, errors {batch.errors}")
            tasks_s.append((batch.finished_at - batch.started_at).total_seconds())
            print(f"  import {i + 1}: request {requests_ms[-1]:7.1f} ms · task start → commit {tasks_s[-1]:6.2f} s "
                  f"({batch.dialogue_count} dialogues, {batch.round_count} rounds, attempts {batch.attempts})")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    best_task, best_request = min(tasks_s), min(requests_ms)
    print(f"task start → commit  best {best_task:.2f} s  median {statistics.median(tasks_s):.2f} s  "
          f"best / budget {best_task / TASK_BUDGET_S:.3f} (budget {TASK_BUDGET_S:.0f} s)  "
          f"{'PASS' if best_task <= TASK_BUDGET_S else 'FAIL'}")
    print(f"upload request       best {best_request:.1f} ms  median {statistics.median(requests_ms):.1f} ms  "
          f"best / budget {best_request / REQUEST_BUDGET_MS:.3f} (budget {REQUEST_BUDGET_MS:.0f} ms)  "
          f"{'PASS' if best_request <= REQUEST_BUDGET_MS else 'FAIL'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if best_task <= TASK_BUDGET_S and best_request <= REQUEST_BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
