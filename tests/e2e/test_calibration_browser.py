"""Calibration in a real browser: a coder codes a gold transcript with the keyboard, submits and reads the
feedback against gold; the coordinator reads the proficiency table and the drift chart (docs/calibration.md)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from annotation import actions, miti
from annotation.models import Assignment
from tests.calibration.helpers import (
    code_assignment,
    gold_codes,
    gold_globals,
    make_gold_set,
    make_transcripts,
)
from tests.e2e.test_coding_browser import KEY_FOR, wait_until

pytestmark = pytest.mark.browser


def test_calibration_feedback_then_proficiency_and_drift(browser_context, login, study, coordinator, coder, coder2):
    golds = make_gold_set(study, coordinator, [coder, coder2], n=4, volleys=3, per_volley=2)
    calibration = actions.create_calibration_round(study, name="Calibration", golds=golds[:1], coders=[coder], seed=2)
    # coder2 codes a study round with seeded gold: the drift chart has a line.
    transcripts = make_transcripts(study, 4, label="Model run", kind="generated", prefix="g", volleys=3, per_volley=2)
    seeded_round = actions.create_coding_round(study, name="Spring", sources=[transcripts[0].source], coders=[coder2],
                                               overlap=0, seed=4, gold_set=golds[0].gold_set, gold_rate=0.75)
    for a in Assignment.objects.filter(coding_round=seeded_round):
        code_assignment(a, gold_codes(a.transcript), gold_globals(a.transcript), coder2)

    assignment = Assignment.objects.get(coding_round=calibration, coder=coder)
    truth = list(gold_codes(assignment.transcript).values())
    sent = ["CONFRONT" if i == 0 else code for i, code in enumerate(truth)]  # one disagreement
    page = browser_context.new_page()
    login(page, "coder", next_url=f"/code/{assignment.pk}/")
    expect(page.locator("#calibration-feedback")).to_have_count(0)
    expect(page.locator("#u-1")).to_have_class(re.compile(r"\bis-current\b"))
    for code in sent:
        page.keyboard.press(KEY_FOR[code])
    expect(page.locator("#g-CULTIVATING_CHANGE_TALK")).to_have_class(re.compile(r"\bis-current\b"))
    for key in miti.GLOBAL_KEYS:
        page.keyboard.press(str(gold_globals(assignment.transcript)[key]))
    wait_until(page, lambda: assignment.codes.count() == len(truth) and assignment.global_ratings.count() == 4,
               what="every code and global saved")
    expect(page.locator("#save-state")).to_have_text("Saved")
    page.click("#submit-button")

    feedback = page.locator("#calibration-feedback")
    expect(feedback).to_be_visible()
    expect(feedback).to_contain_text(f"You agree with the gold code on {len(truth) - 1} of {len(truth)} utterances")
    expect(feedback.locator("tr.fb-differ")).to_have_count(1)
    expect(feedback.locator('tr[data-feedback-utterance="1"] .fb-code')).to_have_text("CONFRONT")
    expect(feedback).to_contain_text("Confront")  # the MITI definitions of both codes
    expect(feedback.locator('tr[data-feedback-global="EMPATHY"]')).to_contain_text("yes")
    page.screenshot(path=str(settings.VAR_DIR / "calibration-feedback.png"), full_page=True)

    browser_context.clear_cookies()
    login(page, "coordinator", next_url=f"/studies/{study.slug}/calibration/")
    table = page.locator("#proficiency")
    expect(table.locator('tr[data-coder="coder"]')).to_contain_text("1")
    expect(table.locator('tr[data-coder="coder2"]')).to_be_visible()
    expect(page.locator("#drift-chart svg")).to_be_visible()
    expect(page.locator("#drift-chart #drift-threshold")).to_have_count(1)
    page.screenshot(path=str(settings.VAR_DIR / "calibration-coordinator.png"), full_page=True)
