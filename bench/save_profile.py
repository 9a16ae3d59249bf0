"""The code save's own cost, in process: Python CPU and queries per save, by part, for one checkout.

``save_latency.py`` measures latency under gunicorn, which on a shared 2-core machine moves with
everything else running there. This script runs the same save (``POST /code/<pk>/code/`` as coding.js
sends it, HTMX partial answer, CSRF enforced) through Django's test client in one process, many
times, and reports what load does not move much: **thread CPU time per save**, statements per save
(BEGIN/COMMIT not counted) and the CPU of the parts of the request (``--parts``). Run it for two
checkouts one after the other (``--repo``: e.g. a detached worktree of an older commit) to compare
code side by side::

    git worktree add --detach /tmp/save_base <commit> && ln -s "$PWD/.venv" /tmp/save_base/.venv
    .venv/bin/python bench/save_profile.py --repo /tmp/save_base --database-url postgres://…/mi_save_base
    .venv/bin/python bench/save_profile.py --database-url postgres://…/mi_save_profile

Each checkout needs its own database (created and migrated by that checkout's code, study built by its
``bench/save_latency.py``: 4 coders, 20 volleys each). ``--profile FILE`` writes a cProfile of the
timed saves.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import json
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PARTS = (
    "annotation.queries.access.assignment_for",
    "annotation.queries.coding.utterance_pk",
    "annotation.actions.coding.save_code",
    "annotation.actions.coding._claim",
    "annotation.views.coding._partials",
    "annotation.queries.coding.volley_rows",
    "annotation.queries.coding.assignment_progress",
    "django.template.loader.render_to_string",
    "django.contrib.auth.get_user",
)


def _instrument(spec: str, cpu: dict[str, float]) -> None:
    """Wrap ``module.function`` (and every module-level alias of it) to add its thread CPU to ``cpu``."""
    module_name, name = spec.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
        original = getattr(module, name)
    except (ImportError, AttributeError):
        return  # not in this checkout

    @functools.wraps(original)
    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            cpu[spec] += time.thread_time() - started

    for loaded in list(sys.modules.values()):
        if loaded is not None and getattr(loaded, name, None) is original:
            try:
                setattr(loaded, name, timed)
            except (AttributeError, TypeError):
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(HERE), help="checkout whose code is measured (default: this one)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mi_bench_save_profile",
                        help="a dedicated PostgreSQL database for that checkout (created if missing, kept)")
    parser.add_argument("--saves", type=int, default=400, help="timed saves (default 400, after 40 untimed)")
    parser.add_argument("--parts", default=",".join(PARTS), help="functions whose CPU is reported ('' for none)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the timed saves here")
    args = parser.parse_args()

    repo = Path(args.repo).resolve()
    sys.path[:0] = [str(repo), str(repo / "bench")]
    os.chdir(repo)
    var = Path(tempfile.mkdtemp(prefix="mi-save-profile-"))
    (var / "staticfiles").mkdir()
    os.environ.update(
        DATABASE_URL=args.database_url, SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver", MI_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="mi_platform.settings", LOG_LEVEL="WARNING",
    )  # fmt: skip
    import save_latency  # that checkout's: its study set-up matches its code

    save_latency.prepare_database(args.database_url, reuse=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from annotation import miti

    call_command("migrate", verbosity=0, interactive=False)
    codes = [*miti.CODE_KEYS, miti.NO_CODE]
    coders = []
    for setup in save_latency.build_study(4, 20):
        client = Client(enforce_csrf_checks=True)
        client.cookies["sessionid"] = setup.session_key
        page = client.get(f"/code/{setup.assignment}/")
        html = page.content.decode()
        csrf = json.loads(save_latency.CSRF_RE.search(html).group(1))["X-CSRFToken"]
        utterances = [int(u) for u, _code in save_latency.CODE_RE.findall(html)]  # what the page names them by
        coders.append({"client": client, "assignment": setup.assignment, "csrf": csrf, "utterances": utterances,
                       "version": int(page["X-Assignment-Version"]), "position": 0})

    def save(i: int) -> None:
        coder = coders[i % len(coders)]
        utterance = coder["utterances"][coder["position"] % len(coder["utterances"])]
        code = codes[(coder["position"] + i) % len(codes)]
        coder["position"] += 1
        response = coder["client"].post(
            f"/code/{coder['assignment']}/code/",
            data={"utterance": str(utterance), "code": code, "version": str(coder["version"])},
            HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=coder["csrf"], HTTP_ACCEPT="text/html",
        )  # fmt: skip
        if response.status_code != 200:
            raise SystemExit(f"save answered {response.status_code}: {response.content[:300]!r}")
        coder["version"] = int(response["X-Assignment-Version"])

    for i in range(40):  # untimed: connections, templates, caches
        save(i)
    statements: collections.Counter[str] = collections.Counter()

    def count(execute, sql, params, many, context):
        statements[re.sub(r"\s+", " ", sql)[:100]] += 1
        return execute(sql, params, many, context)

    cpu: dict[str, float] = collections.defaultdict(float)
    for spec in filter(None, args.parts.split(",")):
        _instrument(spec, cpu)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    load = os.getloadavg()
    with connection.execute_wrapper(count):
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(args.saves):
            save(i)
        if profiler:
            profiler.disable()
        cpu_ms = (time.thread_time() - cpu0) / args.saves * 1000
        wall_ms = (time.perf_counter() - wall0) / args.saves * 1000
    n = sum(statements.values()) / args.saves
    print(f"checkout      {repo}")
    print(f"saves         {args.saves} (HTMX, 4 coders round robin, after 40 untimed); load average before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"per save      CPU {cpu_ms:.2f} ms (this thread: client, Django, psycopg), wall {wall_ms:.2f} ms, "
          f"{n:.2f} statements")
    for spec, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / args.saves * 1000:6.2f} ms CPU  {spec}")
    if profiler:
        profiler.dump_stats(args.profile)
        print(f"profile       {args.profile} (python -m pstats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
