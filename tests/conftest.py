"""Shared fixtures: named personas, a study set up through the real actions, a real Celery worker.

Personas: ``admin`` (site staff), ``coordinator``, ``coder`` and ``coder2`` (members of
``study``), ``outsider`` (a user with no membership). Everyone's password is ``PASSWORD``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"
SHARED_DATA = Path(os.environ.get("MI_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = REPO / "tests" / "fixtures"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def _local_memory_cache():
    """Throttle counters in local memory for the whole run, whatever REDIS_URL says.

    Django's ``RedisCache.clear()`` is a FLUSHDB, and the test Redis database is also the Celery broker's:
    clearing counters between tests must not empty a queue. The live server runs in this process, so
    browser tests share the same counters.
    """
    from django.test.utils import override_settings

    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache(_local_memory_cache):
    # Failed sign-ins and API throttle counts of one test must not refuse the next test's requests.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _no_language_left_active():
    # A request in Chinese leaves zh-hans active in the test thread (LocaleMiddleware activates, nothing
    # deactivates): the next test's actions would answer in Chinese.
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path, monkeypatch):
    """Stored uploads of background imports go to the test's own folder — for a worker started by the test too."""
    folder = tmp_path / "imports"
    settings.MI_IMPORT_DIR = folder
    monkeypatch.setenv("MI_IMPORT_DIR", str(folder))
    return folder


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def coordinator(make_user):
    from django.contrib.auth.models import Permission

    user = make_user("coordinator")
    user.user_permissions.add(Permission.objects.get(codename="add_study"))
    return user


@pytest.fixture
def coder(make_user):
    return make_user("coder")


@pytest.fixture
def coder2(make_user):
    return make_user("coder2")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def study(coordinator, coder, coder2):
    """A Chinese study with two coders, made through the actions."""
    from annotation import actions

    study = actions.create_study(
        name="Smoking cessation", slug="smoking", change_goal="quit smoking", language="zh", created_by=coordinator
    )
    actions.set_membership(study, "coder", "coder")
    actions.set_membership(study, "coder2", "coder")
    return study


@pytest.fixture
def other_study(outsider):
    from annotation import actions

    return actions.create_study(name="Other", slug="other", change_goal="exercise", language="en", created_by=outsider)


@pytest.fixture
def demo_dialogues_file() -> Path:
    return REPO / "annotation" / "demo_data" / "demo_dialogues.jsonl"


@pytest.fixture
def client_for(client):
    """Log a persona in: ``client_for(user)`` returns the logged-in test client."""

    def login(user):
        client.force_login(user)
        return client

    return login


# --- a real Celery worker -------------------------------------------------------------------


def _worker_env(db_name: str) -> dict[str, str]:
    from django.conf import settings

    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        user = db.get("USER") or "postgres"
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{db_name}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db_name}"
    env.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
    return env


@contextmanager
def running_worker(queues: str = "cpu", app_module: str = "mi_platform"):
    """A real ``celery worker`` process (``-A app_module``) on the test database and the Redis broker.

    It consumes ``cpu`` with the prefork pool (so ``kill()`` can take a child down mid-chunk); a
    worker on ``gpu``/``train`` would be refused that pool (``inference.workers.pool_refusal``).

    Yields a small controller with ``kill()`` (SIGKILL) and ``restart()`` for fault tests. A test that
    needs a changed worker (e.g. slowed chunks) passes its own app module: one that imports the real
    app and adds its hooks, so nothing test-only is shipped in the app.
    """
    from django.conf import settings
    from django.db import connection

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("the worker tests need REDIS_URL/CELERY_BROKER_URL (run them with `make test`)")
    env = _worker_env(connection.settings_dict["NAME"])
    from mi_platform.celery import app

    app.control.purge()

    class Worker:
        proc: subprocess.Popen | None = None

        def start(self) -> None:
            log = open(Path(settings.VAR_DIR) / "worker-test.log", "ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", app_module, "worker", "-Q", queues, "-c", "1",
                 "--pool", "prefork", "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            deadline = time.time() + 60
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("celery worker exited at start; see var/.../worker-test.log")
                try:
                    if app.control.ping(timeout=1.0):
                        return
                except Exception:  # broker hiccup while the worker boots
                    pass
            raise RuntimeError("celery worker did not answer a ping within 60 s")

        def kill(self) -> None:
            if self.proc and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

        def stop(self) -> None:
            if self.proc and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.kill()

        def restart(self) -> None:
            self.stop()
            self.start()

    worker = Worker()
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.control.purge()


@pytest.fixture
def celery_app_module() -> str:
    """The ``-A`` app of :func:`celery_worker_process`; a test module overrides it to start a test-only app."""
    return "mi_platform"


@pytest.fixture
def celery_worker_process(transactional_db, request, celery_app_module):
    """Start a real ``celery worker`` process on the test database and Redis (the app as shipped, unless
    the test module overrides ``celery_app_module``).

    Tests that use it must use ``transactional_db`` so the worker sees committed rows. Yields the
    controller of :func:`running_worker`.
    """
    with running_worker(getattr(request, "param", "cpu"), app_module=celery_app_module) as worker:
        yield worker
