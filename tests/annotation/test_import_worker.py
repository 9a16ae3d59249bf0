"""A real Celery worker killed in the middle of an import (issue 13): the redelivered task takes the stale
claim over, imports once, and nothing is duplicated or left half-written.

The worker runs a test-only app (``slow_import_worker``) that pauses inside the first attempt's write
transaction, so the kill lands mid-import deterministically. Claims go stale after 3 s and Redis
redelivers an unacknowledged message 4 s after handing it out (production: 900 s and one hour).
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from annotation import actions
from annotation.models import Dialogue, ImportBatch, Turn
from tests.conftest import FIXTURES

KILL_ENV = {"MI_IMPORT_CLAIM_STALE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "4"}


@pytest.fixture
def celery_app_module() -> str:
    return "tests.annotation.slow_import_worker"


@pytest.fixture
def pause_marker(tmp_path, monkeypatch) -> Path:
    marker = tmp_path / "import-paused"
    monkeypatch.setenv("MI_TEST_IMPORT_PAUSE_MARKER", str(marker))
    for key, value in KILL_ENV.items():
        monkeypatch.setenv(key, value)
    return marker


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _sessions_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((FIXTURES / "import" / "cpsycound").glob("session_*.txt")):
            archive.write(path, f"Data/{path.name}")
    return buffer.getvalue()


@pytest.mark.worker
def test_worker_killed_mid_import_reruns_once_and_duplicates_nothing(pause_marker, celery_worker_process, study):
    batch = actions.request_import(study, data=_sessions_zip(), filename="sessions.zip")  # sent on commit
    stored = Path(batch.upload_path)
    _wait(pause_marker.exists, 120, "the worker to reach the write")
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == ("running", 1)
    assert Dialogue.objects.filter(study=study).count() == 0  # inserted in the worker's open transaction only

    celery_worker_process.kill()  # SIGKILL: no clean-up, no ack, the transaction dies with the connection
    assert Dialogue.objects.filter(study=study).count() == 0 and Turn.objects.count() == 0
    time.sleep(5)  # the claim (3 s) and the delivery (4 s) are now overdue
    celery_worker_process.start()

    def ended() -> bool:
        batch.refresh_from_db()
        return batch.finished

    _wait(ended, 120, "the redelivered import to end")
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.attempts == 2  # re-run exactly once
    ids = list(Dialogue.objects.filter(study=study).values_list("external_id", flat=True))
    assert sorted(ids) == ["session_1", "session_10", "session_2"]  # each once
    assert (batch.dialogue_count, batch.round_count) == (3, 6)
    assert Turn.objects.filter(dialogue__study=study).count() == sum(
        Dialogue.objects.get(external_id=i).turns.count() for i in ids
    ) == 13
    assert batch.upload_path == "" and not stored.exists()
