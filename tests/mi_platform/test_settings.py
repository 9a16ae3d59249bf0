"""The settings module: embedded default, env switches, startup checks, deploy checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG_VARS = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY", "DEBUG",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    base.update({"MI_VAR_DIR": str(tmp_path)}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=base, capture_output=True, text=True, timeout=120
    )


def test_missing_secret_key_is_a_startup_error(tmp_path):
    result = run_manage(tmp_path, "check")
    assert result.returncode != 0
    assert "mi_platform.E001" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_with_readme_production_variables(tmp_path):
    result = run_manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),  ALLOWED_HOSTS="mi.example.org", SECURE_SSL_REDIRECT="1",
        SESSION_COOKIE_SECURE="1", CSRF_COOKIE_SECURE="1", SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1", SECURE_HSTS_PRELOAD="1",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_uses_sqlite_and_a_serverless_broker(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);print(s.CELERY_BROKER_URL);print(s.DEBUG);"
        "print(s.CACHES['default']['BACKEND'])"
    )
    result = run_manage(tmp_path, "shell", "-c", code, SECRET_KEY="k")
    assert result.returncode == 0, result.stderr
    engine, broker, debug, cache = result.stdout.split()[-4:]
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://localhost//"  # a host: kombu warns "No hostname was supplied" without one
    assert debug == "False"
    assert cache == "django.core.cache.backends.locmem.LocMemCache"
    assert (tmp_path / "broker" / "in").is_dir()


def test_database_and_redis_urls_switch_the_backends(tmp_path):
    code = (
        "from django.conf import settings as s;print(s.DATABASES['default']['ENGINE']);print(s.CELERY_BROKER_URL);"
        "print(s.CACHES['default']['BACKEND']);print(s.CACHES['default']['LOCATION'])"
    )
    result = run_manage(
        tmp_path, "shell", "-c", code, SECRET_KEY="k",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert result.returncode == 0, result.stderr
    engine, broker, cache, cache_location = result.stdout.split()[-4:]
    assert engine == "django.db.backends.postgresql"
    assert broker == "redis://127.0.0.1:6379/3"
    # Throttle counters are shared by every web worker.
    assert cache == "django.core.cache.backends.redis.RedisCache"
    assert cache_location == "redis://127.0.0.1:6379/3"
