"""``GET /healthz``: can this web process serve? Used by docker-compose's health checks.

Checks the database (``SELECT 1``), the cache (a write and a read), the broker (a connection) and
whether a Celery worker answered a ping just now. Answers 200 ``{"status": "ok"|"degraded", "checks":
{name: {"ok": bool, "detail": str}}}`` when the database, cache and broker answer, 503 otherwise.
No worker is "degraded", not down: pages and the API still work, queued work waits for a worker.
No authentication and no names of hosts or users in the body; the session is never touched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mi_platform.celery import app

WORKER_PING_TIMEOUT = 1.0


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache() -> str:
    key, value = f"healthz:{uuid.uuid4().hex}", "1"
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the value written was not read back")
    cache.delete(key)
    return "read and write"


def _broker() -> str:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "connected"


def _workers() -> str:
    replies = app.control.ping(timeout=WORKER_PING_TIMEOUT) or []
    if not replies:
        raise RuntimeError(f"no worker answered a ping within {WORKER_PING_TIMEOUT:g} s")
    return f"{len(replies)} worker(s) answered"


CHECKS: dict[str, Callable[[], str]] = {"database": _database, "cache": _cache, "broker": _broker, "workers": _workers}
REQUIRED = ("database", "cache", "broker")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        if name == "workers" and not checks["broker"]["ok"]:
            checks[name] = {"ok": False, "detail": "not asked: the broker is unreachable", "ms": 0}
            continue
        try:
            detail, ok = check(), True
        except RuntimeError as exc:  # our own messages
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - any failure is the answer; its type only (no host names)
            detail, ok = f"unreachable ({type(exc).__name__})", False
        checks[name] = {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000)}
    up = all(checks[name]["ok"] for name in REQUIRED)
    body = {"status": ("ok" if checks["workers"]["ok"] else "degraded") if up else "down", "checks": checks}
    response = JsonResponse(body, status=200 if up else 503)
    if not up:
        response["Retry-After"] = "30"
    return response
