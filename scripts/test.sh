#!/usr/bin/env bash
# Runs the whole suite against real PostgreSQL and Redis, with a real Celery worker and Chromium.
# Starts what is missing; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
bash scripts/ensure_services.sh
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mi_platform}
export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/11}
export CELERY_BROKER_URL=$REDIS_URL
export CELERY_RESULT_BACKEND=$REDIS_URL
export SECRET_KEY=${SECRET_KEY:-test-secret-key-not-for-production}
export MI_VAR_DIR=${MI_VAR_DIR:-$PWD/var/test}
mkdir -p "$MI_VAR_DIR/staticfiles"  # whitenoise warns on every request when STATIC_ROOT is missing
echo "== ruff"
"$VENV/bin/ruff" check .
echo "== mypy (strict, on the pure modules listed in pyproject.toml)"
"$VENV/bin/mypy"
echo "== import contracts (.importlinter: floors, pure modules, tasks by name, no circles)"
"$VENV/bin/lint-imports" --no-cache
echo "== django checks"
# makemigrations checks migration history against the database: make sure it exists (pytest itself
# creates and drops its own test_ database).
"$VENV/bin/python" - <<'PY'
import os
import psycopg
from urllib.parse import urlparse
url = urlparse(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
admin = url._replace(path="/postgres").geturl()
with psycopg.connect(admin, autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"created database {name}")
PY
"$VENV/bin/python" manage.py check
"$VENV/bin/python" manage.py makemigrations --check --dry-run
if [ $# -eq 0 ]; then
  # The whole suite: first the vLLM backend alone on its CPU stand-in, with branch coverage of
  # inference/backends/vllm_backend.py enforced at 100 % (no GPU path may go unexercised), then
  # everything else (that file is not run twice).
  echo "== vLLM contract (100 % branch coverage of inference/backends/vllm_backend.py)"
  COVERAGE_FILE="$MI_VAR_DIR/.coverage.vllm" "$VENV/bin/python" -m pytest tests/inference/test_vllm_contract.py -q \
    --cov=inference.backends.vllm_backend --cov-branch --cov-report=term-missing --cov-fail-under=100
fi
echo "== pytest"
if [ $# -gt 0 ]; then
  exec "$VENV/bin/python" -m pytest "$@"
fi
DONE=(--ignore=tests/inference/test_vllm_contract.py --durations=15)  # the contract ran above, with coverage; the slowest tests are listed to keep CI time in view
# The whole suite runs as two pytest processes side by side: the browser and worker-heavy tests
# (tests/e2e, tests/inference) spend most of their time waiting on Chromium, Celery worker
# subprocesses and model builds, so they overlap well with the CPU-bound rest on a 2-core machine.
# Each process has its own test database, Redis database and var folder, so a worker started by one
# never takes the other's tasks. PYTEST_SERIAL=1 runs the suite as one process instead.
if [ "${PYTEST_SERIAL:-0}" = 1 ]; then
  exec "$VENV/bin/python" -m pytest "${DONE[@]}"
fi
SIDE_PATHS=(tests/e2e tests/inference)
side_db="${DATABASE_URL}_side"
side_redis="${TEST_REDIS_URL_SIDE:-${REDIS_URL%/*}/$(( ${REDIS_URL##*/} + 1 ))}"
side_log="$MI_VAR_DIR/pytest-side.log"
mkdir -p "$MI_VAR_DIR/side/staticfiles"
echo "   (side process: ${SIDE_PATHS[*]} on ${side_db##*/} and Redis ${side_redis##*/}; its log: $side_log)"
DATABASE_URL=$side_db REDIS_URL=$side_redis CELERY_BROKER_URL=$side_redis CELERY_RESULT_BACKEND=$side_redis \
  MI_VAR_DIR="$MI_VAR_DIR/side" "$VENV/bin/python" -m pytest "${DONE[@]}" "${SIDE_PATHS[@]}" >"$side_log" 2>&1 &
side_pid=$!
trap 'kill $side_pid 2>/dev/null || true' INT TERM
ignores=()
for p in "${SIDE_PATHS[@]}"; do ignores+=(--ignore="$p"); done
main_rc=0
"$VENV/bin/python" -m pytest "${DONE[@]}" "${ignores[@]}" || main_rc=$?
echo "== pytest, side process (${SIDE_PATHS[*]})"
side_rc=0
wait $side_pid || side_rc=$?
cat "$side_log"
echo "== pytest exit codes: main $main_rc, side $side_rc"
[ "$main_rc" = 0 ] && [ "$side_rc" = 0 ]
