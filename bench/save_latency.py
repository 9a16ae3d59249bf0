"""Benchmark: latency of a code save under gunicorn + PostgreSQL with 20 concurrent coders (not a test).

What it does, in one command:

1. creates a dedicated PostgreSQL database (default ``mi_bench``; dropped and re-created unless
   ``--reuse``) and migrates it;
2. builds a study with one coordinator and N coders (default 20), imports one synthetic dialogue per
   coder (rounds taken from ``annotation/demo_data/demo_dialogues.jsonl``, repeated to ``--volleys``)
   through ``import_dialogues``, makes the reference transcripts and a coding round with overlap 0, so
   every coder has exactly one assignment of its own — all through the real actions;
3. starts gunicorn (``mi_platform.wsgi``, 4 workers × 4 threads gthread, DEBUG off, a random
   SECRET_KEY) on a free port of 127.0.0.1, wrapped in ``timed_application`` (below) so every response
   says how long it spent in Django, on its CPU and in PostgreSQL (``--no-server-timing`` serves
   ``mi_platform.wsgi`` bare);
4. every simulated coder opens its coding page once (the session cookie is created directly in the
   database, as ``django.contrib.auth.login`` would; the CSRF token comes from the page like coding.js
   reads it), then loops: POST ``/code/<pk>/code/`` for the next utterance with the version taken from
   the previous response's ``X-Assignment-Version`` header and ``HX-Request: true`` — what coding.js
   sends — pausing ``--think-ms`` (default 1000 ± 500 ms, a fast keyboard coder) between saves;
   ``--think-ms 0`` turns it into a saturation test;
5. measures a baseline with the same coders and concurrency in the same run (``GET /accounts/login/``
   with the same session: the whole middleware stack, no coding work), then the saves; prints n,
   errors, p50/p95/p99/max, requests per second, the save/baseline ratios and PASS/FAIL against the
   50 ms p95 target of issue 3;
6. stops gunicorn (always, also on errors and Ctrl-C).

Latency is measured client-side (perf_counter around each request, body read). The client (asyncio +
httpx, one connection per coder) runs on the same machine as gunicorn and PostgreSQL and competes
with them for the CPUs; the script prints the client's own CPU time per request so that share is
visible. All traffic goes to 127.0.0.1.

Run: .venv/bin/python bench/save_latency.py [--seconds 20] [--think-ms 1000] [--reuse]
     [--database-url postgres://postgres@127.0.0.1:5432/mi_bench] [--workers 4 --threads 4]
Exit status: 0 when the p95 target is met, 1 when it is missed or the set-up fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mi_bench"
STUDY_SLUG = "bench-save-latency"
ROUND_NAME = "Save latency round"
TARGET_P95_MS = 50.0
# A fast keyboard coder: one utterance coded per second, sustained by all 20 coders (20 saves/s in all).
# With no pause at all the 20 loops saturate the 2 CPUs and, by Little's law, latency is just
# 20 ÷ throughput — a throughput test, run with --think-ms 0.
DEFAULT_THINK_MS = 1000.0
DEMO = REPO / "annotation" / "demo_data" / "demo_dialogues.jsonl"
CSRF_RE = re.compile(r"""hx-headers='(\{[^']*\})'""")
CODE_RE = re.compile(r'data-utterance="(\d+)" data-code="([^"]*)"')


# --------------------------------------------------------------------------------------------------
# Database and data
# --------------------------------------------------------------------------------------------------


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def prepare_database(url: str, *, reuse: bool) -> bool:
    """Create the bench database (drop it first unless ``reuse``); return whether it already existed."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    if not name or name in {"postgres", "template0", "template1"}:
        raise SystemExit(f"--database-url must name a dedicated database, got {url!r}")
    with psycopg.connect(_with_db(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and not reuse:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = False
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return exists


def _synthetic_dialogues(n: int, volleys: int) -> bytes:
    """``n`` JSONL dialogues of ``volleys`` client/counselor rounds each, built from the demo rounds."""
    pairs: list[tuple[str, str]] = []
    for line in DEMO.read_text(encoding="utf-8").splitlines():
        turns = json.loads(line)["turns"]
        for client, counselor in zip(turns, turns[1:], strict=False):
            if client["speaker"] == "client" and counselor["speaker"] == "counselor":
                pairs.append((client["text"], counselor["text"]))
    rng = random.Random(7)
    out = []
    for i in range(n):
        turns = []
        for v in range(volleys):
            client, counselor = rng.choice(pairs)
            turns.append({"speaker": "client", "text": f"{client}（{i + 1}-{v + 1}）"})
            turns.append({"speaker": "counselor", "text": counselor})
        out.append(json.dumps(
            {"external_id": f"bench-{i + 1:03d}", "topic": "bench", "split": "test", "source": "bench",
             "turns": turns},
            ensure_ascii=False,
        ))
    return ("\n".join(out) + "\n").encode("utf-8")


@dataclass
class CoderSetup:
    username: str
    session_key: str
    assignment: int
    utterances: list[int]


def build_study(n_coders: int, volleys: int) -> list[CoderSetup]:
    """The study, coders and one assignment per coder, through the annotation actions (reused if present)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from annotation import actions
    from annotation.models import Assignment, CodingRound, Study, Utterance

    User = get_user_model()
    study = Study.objects.filter(slug=STUDY_SLUG).first()
    coders = [f"bench-coder-{i + 1:02d}" for i in range(n_coders)]
    if study is None or not CodingRound.objects.filter(study=study, name=ROUND_NAME).exists():
        if study is not None:
            study.delete()
        coordinator, _ = User.objects.get_or_create(username="bench-coordinator")
        study = actions.create_study(
            name="Save latency bench", slug=STUDY_SLUG, change_goal="戒烟 (quit smoking)", created_by=coordinator
        )
        for username in coders:
            if not User.objects.filter(username=username).exists():
                User.objects.create_user(username)  # unusable password: the session is made below
            actions.set_membership(study, username, "coder")
        actions.import_dialogues(study, data=_synthetic_dialogues(n_coders, volleys), filename="bench.jsonl")
        source = actions.ensure_reference_source(study)
        actions.create_coding_round(
            study, name=ROUND_NAME, sources=[source], coders=list(User.objects.filter(username__in=coders)),
            overlap=0.0, seed=1, created_by=coordinator,
        )
    setups = []
    for username in coders:
        user = User.objects.filter(username=username).first()
        assignment = (
            Assignment.objects.filter(coding_round__study=study, coding_round__name=ROUND_NAME, coder=user)
            .order_by("position").first()
        )
        if user is None or assignment is None:
            raise SystemExit(f"{username} has no assignment in study {STUDY_SLUG}: run without --reuse")
        # Coders name utterances by their number in the transcript (docs/blinding.md), not a database id.
        utterances = list(range(1, Utterance.objects.filter(volley__transcript_id=assignment.transcript_id).count() + 1))
        session = SessionStore()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        setups.append(CoderSetup(username, session.session_key, assignment.pk, utterances))
    return setups


# --------------------------------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------------------------------

_django_app = None


def timed_application(environ, start_response):
    """Django's WSGI app plus a ``Server-Timing`` header: wall and CPU time in the app, DB time, queries.

    gunicorn loads this (``bench.save_latency:timed_application``) unless ``--no-server-timing``, so the
    client can split its latency into time in Django, time in PostgreSQL and time queued elsewhere. The
    cost is one wrapper call per query (microseconds).
    """
    global _django_app
    if _django_app is None:
        from django.core.wsgi import get_wsgi_application

        _django_app = get_wsgi_application()
    from django.db import connection

    stats = {"n": 0, "db": 0.0}

    def count(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            stats["db"] += time.perf_counter() - started
            stats["n"] += 1

    captured: list = []

    def capture(status, headers, exc_info=None):
        captured[:] = [status, list(headers), exc_info]
        return lambda data: None  # Django never calls write()

    cpu0, t0 = time.thread_time(), time.perf_counter()
    with connection.execute_wrapper(count):
        body = _django_app(environ, capture)
    app_ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.thread_time() - cpu0) * 1000
    status, headers, exc_info = captured
    headers.append((
        "Server-Timing",
        f"app;dur={app_ms:.2f}, cpu;dur={cpu_ms:.2f}, db;dur={stats['db'] * 1000:.2f}, q;desc={stats['n']}",
    ))
    start_response(status, headers, exc_info)
    return body



def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(args, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "gunicorn"
    gunicorn = str(exe) if exe.exists() else shutil.which("gunicorn")
    if gunicorn is None:
        raise SystemExit("gunicorn not found next to this Python or on PATH")
    cmd = [
        gunicorn, "mi_platform.wsgi:application" if args.no_server_timing else "bench.save_latency:timed_application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", args.worker_class,
        "--log-level", "warning", "--chdir", str(REPO),
    ]
    print("gunicorn: " + " ".join(cmd[1:]))
    # Its own process group, so the finally-block can stop the master and every worker.
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# --------------------------------------------------------------------------------------------------
# Simulated coders
# --------------------------------------------------------------------------------------------------


@dataclass
class Coder:
    setup: CoderSetup
    index: int
    client: object = None
    csrf: str = ""
    version: int = 0
    position: int = 0
    codes: dict[int, str] = field(default_factory=dict)  # what the page shows for each utterance


SERVER_TIMING_RE = re.compile(r"(app|cpu|db);dur=([0-9.]+)|q;desc=([0-9]+)")


def server_timing(header: str | None) -> dict[str, float]:
    """``{"app": ms, "cpu": ms, "db": ms, "q": n}`` from the header ``timed_application`` adds."""
    values: dict[str, float] = {}
    for name, dur, queries in SERVER_TIMING_RE.findall(header or ""):
        if name:
            values[name] = float(dur)
        else:
            values["q"] = float(queries)
    return values


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    server: list[dict[str, float]] = field(default_factory=list)
    outside_ms: list[float] = field(default_factory=list)  # client latency minus time in Django
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    client_cpu_s: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


async def open_page(coder: Coder) -> None:
    """GET the coding page like a browser: the CSRF token from hx-headers, the version from the header."""
    response = await coder.client.get(f"/code/{coder.setup.assignment}/")
    if response.status_code != 200:
        raise SystemExit(f"{coder.setup.username}: coding page answered {response.status_code}")
    match = CSRF_RE.search(response.text)
    if not match:
        raise SystemExit(f"{coder.setup.username}: no CSRF token in the coding page")
    coder.csrf = json.loads(match.group(1))["X-CSRFToken"]
    coder.codes = {int(uid): code for uid, code in CODE_RE.findall(response.text)}
    coder.version = int(response.headers["X-Assignment-Version"])


async def save_once(coder: Coder, codes: list[str]):
    """One code save for the coder's next utterance; returns (latency ms, error kind or None, response)."""
    utterances = coder.setup.utterances
    utterance = utterances[coder.position % len(utterances)]
    # Always a different code from the stored one, so every save writes the code and an audit event
    # (the first pass over a fresh database inserts, later passes and --reuse runs update).
    choices = [c for c in codes if c != coder.codes.get(utterance, "")]
    code = choices[(coder.position + coder.index) % len(choices)]
    coder.position += 1
    started = time.perf_counter()
    response = await coder.client.post(
        f"/code/{coder.setup.assignment}/code/",
        data={"utterance": str(utterance), "code": code, "version": str(coder.version)},
        headers={"HX-Request": "true", "X-CSRFToken": coder.csrf, "Accept": "text/html"},
    )
    elapsed = (time.perf_counter() - started) * 1000
    header = response.headers.get("X-Assignment-Version")
    if header is not None:
        coder.version = int(header)  # as coding.js does, also after a 409
    if response.status_code != 200 or header is None:
        return elapsed, f"HTTP {response.status_code}", response
    coder.codes[utterance] = code
    return elapsed, None, response


async def baseline_once(coder: Coder, _codes: list[str]):
    started = time.perf_counter()
    response = await coder.client.get("/accounts/login/")
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, None if response.status_code == 200 else f"HTTP {response.status_code}", response


async def run_phase(name: str, coders: list[Coder], op, *, seconds: float, max_requests: int, think_ms: float,
                    codes: list[str]) -> Phase:
    """Every coder loops ``op`` until the deadline or ``max_requests`` each (a bounded loop)."""
    import httpx

    phase = Phase(name)
    rng = random.Random(name)
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + seconds

    async def loop(coder: Coder) -> None:
        if think_ms:
            await asyncio.sleep(rng.uniform(0, think_ms) / 1000)  # spread the starts
        for _ in range(max_requests):
            if time.perf_counter() >= deadline:
                return
            try:
                elapsed, err, response = await op(coder, codes)
            except httpx.HTTPError as exc:
                phase.error(type(exc).__name__)
                # Back off, so a server that went away is not hammered in a tight loop.
                await asyncio.sleep(max(think_ms, 100) / 1000)
                continue
            if err:
                phase.error(err)
            else:
                phase.latencies_ms.append(elapsed)
                timing = server_timing(response.headers.get("Server-Timing"))
                if "app" in timing:
                    phase.server.append(timing)
                    phase.outside_ms.append(elapsed - timing["app"])
            if think_ms:
                # Jitter ±50 % so coders do not fall into lock-step.
                await asyncio.sleep(think_ms * rng.uniform(0.5, 1.5) / 1000)

    await asyncio.gather(*(loop(c) for c in coders))
    phase.seconds = time.perf_counter() - t0
    phase.client_cpu_s = time.process_time() - cpu0
    return phase


def describe(phase: Phase) -> dict[str, float]:
    values = sorted(phase.latencies_ms)
    n = len(values)
    server = {}
    for key in ("app", "cpu", "db", "q"):
        column = sorted(t[key] for t in phase.server if key in t)
        if column:
            server[key] = (sum(column) / len(column), percentile(column, 95))
    return {
        "server": server, "n": n, "errors": sum(phase.errors.values()), "p50": percentile(values, 50), "p95": percentile(values, 95),
        "p99": percentile(values, 99), "max": values[-1] if values else float("nan"),
        "rps": n / phase.seconds if phase.seconds else 0.0,
        "cpu_ms": 1000 * phase.client_cpu_s / max(1, n + sum(phase.errors.values())),
    }


async def drive(base: str, setups: list[CoderSetup], args) -> tuple[Phase, Phase, int]:
    """Open the pages, warm up, then the baseline and the save phase; also returns the saves answered 200."""
    import httpx

    from annotation import miti

    codes = [*miti.CODE_KEYS, miti.NO_CODE]
    coders = []
    for i, setup in enumerate(setups):
        client = httpx.AsyncClient(
            base_url=base, cookies={"sessionid": setup.session_key}, timeout=30,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        coders.append(Coder(setup=setup, index=i, client=client))
    try:
        await asyncio.gather(*(open_page(c) for c in coders))
        # Warm-up (not counted): every gunicorn thread opens its DB connection, templates are compiled.
        warm = await run_phase("warm-up", coders, save_once, seconds=args.warmup, max_requests=10**6,
                               think_ms=args.think_ms, codes=codes)
        await run_phase("warm-up", coders, baseline_once, seconds=min(args.warmup, 2), max_requests=10**6,
                        think_ms=args.think_ms, codes=codes)
        baseline = await run_phase("baseline", coders, baseline_once, seconds=args.seconds,
                                   max_requests=args.max_requests, think_ms=args.think_ms, codes=codes)
        saves = await run_phase("save", coders, save_once, seconds=args.seconds, max_requests=args.max_requests,
                                think_ms=args.think_ms, codes=codes)
    finally:
        await asyncio.gather(*(c.client.aclose() for c in coders))
    return baseline, saves, len(warm.latencies_ms) + len(saves.latencies_ms)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def _audit_events() -> int:
    from annotation.models import AuditEvent

    return AuditEvent.objects.filter(assignment__coding_round__study__slug=STUDY_SLUG).count()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("MI_BENCH_DATABASE_URL", DEFAULT_DB),
                        help=f"dedicated PostgreSQL database (default {DEFAULT_DB})")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an existing bench database and its study instead of re-creating them")
    parser.add_argument("--coders", type=int, default=20, help="concurrent simulated coders (default 20)")
    parser.add_argument("--volleys", type=int, default=20, help="volleys per transcript (default 20)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured phase (default 20)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per coder and phase (bounded loop)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up seconds (default 3)")
    parser.add_argument("--think-ms", type=float, default=DEFAULT_THINK_MS,
                        help="mean pause between one coder's saves, ±50%% jitter (default 1000; 0 = back to back, "
                             "a saturation test)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--no-server-timing", action="store_true",
                        help="serve mi_platform.wsgi directly, without the Server-Timing wrapper")
    parser.add_argument("--target-ms", type=float, default=TARGET_P95_MS, help="p95 target (default 50)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mi-bench-save-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url, SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost", MI_VAR_DIR=str(tmp / "var"), DJANGO_SETTINGS_MODULE="mi_platform.settings",
        LOG_LEVEL="WARNING", PYTHONPATH=str(REPO),
    )
    os.environ.update(env)
    proc = None
    # A SIGTERM (e.g. `timeout`) must still reach the finally-block that stops gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print("Code-save latency benchmark (issue 3)")
        print(f"machine: {os.cpu_count()} CPUs; load average (1/5/15 min) before: {_load()}")
        print("note: the client, gunicorn and PostgreSQL share these CPUs; latencies are client-side")
        t0 = time.perf_counter()
        existed = prepare_database(args.database_url, reuse=args.reuse)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        call_command("migrate", verbosity=0, interactive=False)
        setups = build_study(args.coders, args.volleys)
        server_version = connection.cursor().connection.info.server_version
        connections.close_all()
        n_utt = [len(s.utterances) for s in setups]
        print(f"database: {args.database_url} (PostgreSQL {server_version // 10000}.{server_version % 10000}; "
              f"{'reused' if existed else 'created'}); set up in {time.perf_counter() - t0:.1f} s")
        print(f"workload: {len(setups)} coders, one assignment each ({args.volleys} volleys, "
              f"{min(n_utt)}–{max(n_utt)} utterances); think time {args.think_ms:g} ms; "
              f"{args.warmup:g} s warm-up, then {args.seconds:g} s baseline and {args.seconds:g} s saves")

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp / "gunicorn.log"
        proc = start_gunicorn(args, env, port, log)
        print(f"gunicorn: {args.workers} workers × {args.threads} threads ({args.worker_class}), DEBUG off, "
              f"{base}")
        wait_ready(base, proc, log)
        events_before = _audit_events()
        baseline, saves, answered = asyncio.run(drive(base, setups, args))
        written = _audit_events() - events_before
    finally:
        if proc is not None:
            stop_gunicorn(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    rows = [("baseline  GET /accounts/login/", describe(baseline)), ("code save POST /code/<pk>/code/", describe(saves))]
    b, s = rows[0][1], rows[1][1]
    print()
    print(f"{'phase':33} {'n':>7} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'req/s':>7} {'client CPU ms/req':>17}")
    for label, d in rows:
        print(f"{label:33} {d['n']:>7} {d['errors']:>6} {d['p50']:>7.1f} {d['p95']:>7.1f} {d['p99']:>7.1f} "
              f"{d['max']:>7.1f} {d['rps']:>7.1f} {d['cpu_ms']:>17.2f}")
    if b["server"] and s["server"]:
        print("\nserver side (Server-Timing from the WSGI wrapper; mean / p95):")
        print(f"{'phase':33} {'in Django ms':>14} {'CPU ms':>13} {'DB wait ms':>17} {'queries':>8} "
              f"{'outside Django ms':>18}")
        for (label, d), phase in zip(rows, (baseline, saves), strict=True):
            sv = d["server"]
            outside = sorted(phase.outside_ms)
            print(f"{label:33} {sv['app'][0]:>6.1f} / {sv['app'][1]:>5.1f} {sv['cpu'][0]:>5.1f} / {sv['cpu'][1]:>5.1f} "
                  f"{sv['db'][0]:>8.1f} / {sv['db'][1]:>5.1f} {sv['q'][0]:>8.1f} "
                  f"{sum(outside) / max(1, len(outside)):>9.1f} / {percentile(outside, 95):>5.1f}")
        print("(DB wait = time inside cursor.execute — PostgreSQL's work plus getting back onto a CPU afterwards;")
        print(" BEGIN/COMMIT are not counted. Outside Django = client latency minus time in the app: waiting")
        print(" for a gunicorn thread, the GIL, a CPU, the network stack and the client's own event loop)")
    for phase in (baseline, saves):
        if phase.errors:
            print(f"errors in {phase.name}: " + ", ".join(f"{k} × {v}" for k, v in sorted(phase.errors.items())))
    def ratio(key: str) -> float:
        return s[key] / b[key] if b[key] else float("nan")

    print(f"ratio save/baseline: p50 {ratio('p50'):.2f}×, p95 {ratio('p95'):.2f}×, req/s {ratio('rps'):.2f}×")
    print(f"load average (1/5/15 min) after: {_load()}")
    # Every answered save changed a code, so each must have written exactly one audit event.
    print(f"database check: {answered} saves answered 200 (warm-up included), {written} audit events written"
          + ("" if answered == written else " — MISMATCH"))
    ok = s["n"] > 0 and s["errors"] == 0 and s["p95"] < args.target_ms and answered == written
    print(f"{'PASS' if ok else 'FAIL'}: p95 of a code save {s['p95']:.1f} ms (target < {args.target_ms:g} ms), "
          f"{s['errors']} errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
