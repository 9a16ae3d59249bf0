"""Imports in a real browser with a real Celery worker (issue 13): the status view polls over HTMX and
moves from running to done with the counts, or to failed with the messages — without a page reload.

The worker runs the test-only app ``tests.annotation.slow_import_worker``, which holds the first import
inside its write until the test lets it go on, so the running state is seen for certain.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from annotation.models import Dialogue, ImportBatch
from tests.conftest import FIXTURES

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_app_module() -> str:
    return "tests.annotation.slow_import_worker"


@pytest.fixture
def pause_marker(tmp_path, monkeypatch) -> Path:
    marker = tmp_path / "import-paused"
    monkeypatch.setenv("MI_TEST_IMPORT_PAUSE_MARKER", str(marker))
    return marker


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.1)


def _upload(page, path: Path) -> None:
    page.goto("/studies/smoking/import/")
    page.set_input_files("#id_file", str(path))
    page.click("#import-form button[type=submit]")
    page.wait_for_url("**/studies/smoking/imports/*/")
    page.evaluate("window.__marker = 1")  # gone if the page were reloaded instead of swapped


def test_upload_moves_from_running_to_done_with_counts(browser_context, login, pause_marker, celery_worker_process,
                                                       study):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "coordinator", next_url="/studies/smoking/")
    _upload(page, FIXTURES / "import" / "speakers" / "zh_counselling.json")  # CPsyCounE-shaped, detected

    _wait_for(pause_marker)  # the worker holds the import inside its write transaction
    status = page.locator("#import-status")
    page.locator("#import-status[data-status=running]", has_text="writing to the database").wait_for()
    assert page.locator("#import-progress").get_attribute("value") == "70"
    assert Dialogue.objects.count() == 0

    pause_marker.with_name(pause_marker.name + ".go").touch()
    page.wait_for_selector("#import-status[data-status=done]", timeout=30_000)
    assert page.locator("#import-counts").inner_text() == "Imported 1 dialogue (2 rounds, format prefixed)."
    assert page.locator("#import-progress").get_attribute("value") == "100"
    assert page.evaluate("window.__marker") == 1  # HTMX swapped the status in place
    assert status.get_attribute("hx-trigger") is None  # polling stopped
    assert page.locator("#import-status a", has_text="Refresh").count() == 0
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.dialogue_count, batch.round_count, batch.attempts) == ("done", 1, 2, 1)
    assert errors == []


def test_bad_upload_shows_the_messages_in_chinese(browser_context, live_server, login, pause_marker,
                                                  celery_worker_process, study):
    browser_context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": live_server.url}])
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "coordinator", next_url="/studies/smoking/")
    _upload(page, FIXTURES / "import" / "bad" / "sharegpt_wrong_order.json")

    page.wait_for_selector("#import-status[data-status=failed]", timeout=60_000)
    box = page.locator("#import-errors").inner_text()
    assert "sharegpt_wrong_order.json, record 2, field 'conversations[0]': dialogue 'gpt-first' starts with a " \
           "counselor turn" in box
    assert "没有导入任何内容" in box  # "Nothing was imported." in the page's language
    assert page.locator("#import-state").inner_text() == "失败"
    assert page.evaluate("window.__marker") == 1
    assert Dialogue.objects.count() == 0 and ImportBatch.objects.get().status == "failed"
    assert errors == []
