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
  set -- --ignore=tests/inference/test_vllm_contract.py
fi
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
