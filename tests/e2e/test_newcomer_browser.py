"""The newcomer's path, end to end: ``manage.py demo`` with a real Celery worker, then a coder and a
coordinator in a real browser.

The demo builds (here: reuses) the tiny model, the worker process generates the run's replies, and the
demo opens a coding round with submitted double-coded work and work waiting. The coder signs in, finds
that work, codes one transcript and submits it with keys only, and lands on the next transcript. The
coordinator opens the results: MITI scores, reliability with its chart, and the automatic metrics.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from annotation.models import Assignment, CodingRound, GlobalRating
from inference.models import GenerationRun
from tests.annotation.test_coding_actions import number, utterances_of
from tests.conftest import PASSWORD
from tests.inference.conftest import demo_model_dir  # noqa: F401 - the session's tiny model, as a fixture

from .test_coding_browser import KEY_FOR, codes_of, wait_until

pytestmark = pytest.mark.browser

CURRENT = re.compile(r"\bis-current\b")


def test_newcomer_demo_then_code_with_keys_then_results(
    celery_worker_process, browser_context, login, live_server, demo_model_dir  # noqa: F811
):
    out = io.StringIO()
    call_command("demo", password=PASSWORD, model_dir=demo_model_dir, url=live_server.url, timeout=600, stdout=out)
    output = out.getvalue()
    run = GenerationRun.objects.get(study__slug="mi-demo")
    assert run.status == "done" and run.items.filter(status="done").count() == run.items.count() > 0, output
    assert "(same inputs: reused)" in output  # the session's model, not a second build
    for username in ("demo-admin", "demo-coordinator", "demo-coder1", "demo-coder2"):
        assert username in output
    coding_round = CodingRound.objects.get(study__slug="mi-demo")

    # The coder finds work waiting: the queue offers it, Enter opens it.
    page = browser_context.new_page()
    login(page, "demo-coder1")
    waiting = list(
        Assignment.objects.filter(coding_round=coding_round, coder__username="demo-coder1")
        .exclude(status="submitted")
        .order_by("position")
    )
    assert len(waiting) >= 2
    expect(page.locator("#next-up")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/code/\d+/$"))
    current = Assignment.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert current.coder.username == "demo-coder1" and current.status != "submitted"
    utterances = utterances_of(current)
    expect(page.locator(f"#u-{number(utterances[0])}")).to_have_class(CURRENT)

    # Code every utterance with one key, rate the globals, submit with Ctrl+Enter then Enter.
    for _u in utterances:
        page.keyboard.press(KEY_FOR["SR"])
    if coding_round.globals_rated:
        for value in (4, 4, 3, 4):
            page.keyboard.press(str(value))
        wait_until(page, lambda: GlobalRating.objects.filter(assignment=current).count() == 4, what="globals")
    wait_until(page, lambda: codes_of(current) == {u.pk: "SR" for u in utterances}, what="every code saved")
    expect(page.locator("#save-state")).to_have_text("Saved")  # the page's own queue is empty too
    page.keyboard.press("Control+Enter")
    expect(page.locator("#submit-confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".readonly-note")).to_be_visible()
    assert Assignment.objects.get(pk=current.pk).status == "submitted"

    # ... and lands on the next transcript of the queue with Enter.
    expect(page.locator("#next-cta")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/code/(?!{current.pk}/)\d+/$"))  # another transcript, not this one
    following = Assignment.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert following.pk != current.pk and following.coder.username == "demo-coder1"
    assert following.status != "submitted"

    # The coordinator's results: MITI scores, reliability with a chart, metrics.
    page = browser_context.new_page()
    login(page, "demo-coordinator", next_url="/studies/mi-demo/results/miti/")
    miti_table = page.locator("main table").first
    expect(miti_table).to_be_visible()
    assert re.search(r"\d\.\d", miti_table.inner_text()), miti_table.inner_text()
    page.goto("/studies/mi-demo/results/reliability/")
    chart = page.locator("main svg").first
    expect(chart).to_be_visible()
    assert chart.locator("rect, circle, line").count() > 0
    assert re.search(r"0\.\d\d", page.locator("main").inner_text())
    page.goto("/studies/mi-demo/results/metrics/")
    metrics = page.locator("main").inner_text()
    assert "BLEU" in metrics and re.search(r"\d\.\d", metrics), metrics
