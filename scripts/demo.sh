#!/usr/bin/env bash
# The embedded demo: SQLite + a broker that needs no server (kombu filesystem transport) + a real
# Celery worker + the tiny locally built model. Everything lives under var/. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var
# The embedded default must not pick up a production configuration from the shell.
unset DATABASE_URL REDIS_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND
if [ ! -s var/secret_key ]; then "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key; fi
export SECRET_KEY_FILE=$PWD/var/secret_key
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}
export SITE_URL="http://$HOST:$PORT"
PY="$VENV/bin/python"

# whitenoise warns on every request when STATIC_ROOT is missing (the demo serves static files from
# the source folders through the finders, so the folder may stay empty).
mkdir -p var/staticfiles
started=$SECONDS

# One worker for every queue; solo: a worker consuming gpu/train refuses other pools (inference/workers.py).
# Started before the demo data, so that it is ready when `manage.py demo` hands it the generation run
# (a worker touches no table before its first task; `demo --migrate` creates them first).
"$VENV/bin/celery" -A mi_platform worker -Q cpu,gpu,train -c 1 --pool solo -l WARNING > var/worker.log 2>&1 &
WORKER=$!
# The web server starts meanwhile too (loading the app touches no table either); it is announced below.
"$VENV/bin/gunicorn" mi_platform.wsgi --bind "$HOST:$PORT" --workers 2 --threads 4 --access-logfile - > var/web.log 2>&1 &
WEB=$!
trap 'kill $WORKER $WEB 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
"$PY" manage.py demo --migrate --url "$SITE_URL" ${DEMO_ARGS:-}

echo "== Web server"
ready=
for _ in $(seq 1 120); do
  if curl -fs -o /dev/null "$SITE_URL/accounts/login/" 2>/dev/null; then ready=1; break; fi
  kill -0 $WEB 2>/dev/null || break
  sleep 0.5
done
if [ -z "$ready" ]; then echo "The web server did not start; see var/web.log." >&2; exit 1; fi
echo
echo "MI Platform is ready at $SITE_URL/ after $((SECONDS - started)) s  (web log: var/web.log, worker log: var/worker.log)"
echo "Log in with one of the four logins above. Ctrl-C to stop."
wait $WEB
