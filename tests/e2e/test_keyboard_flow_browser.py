"""From queue to queue with the keyboard only, in a real browser.

A coder opens the first transcript from the queue (Enter), codes it, submits it (Ctrl+Enter, then
Enter in the confirm dialog) and lands on the next transcript of the queue (Enter on the focused
"Next transcript", or >). An adjudicator starts a
consensus (Enter), accepts coder A's or coder B's code per row ([ and ]), types a code (the coding
keys), submits (Ctrl+Enter, Enter) and goes on to the next transcript waiting for a consensus (Enter).
No mouse click anywhere; the database is checked from the test thread.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation import miti
from annotation.models import Assignment, GlobalRating, UtteranceCode
from tests.annotation import test_adjudication as adjudication
from tests.annotation.test_coding_actions import build_round, number, utterances_of

from .test_coding_browser import KEY_FOR, codes_of, wait_until

pytestmark = pytest.mark.browser

CURRENT = re.compile(r"\bis-current\b")

# The adjudication tests' round: every reference transcript double-coded by coder and coder2.
coding_round = adjudication.coding_round


def test_coder_submits_with_keys_and_lands_on_the_next_transcript(browser_context, login, study, coordinator, coder):
    build_round(study, coordinator, [coder])
    queue = list(Assignment.objects.filter(coder=coder).order_by("position"))
    first, second, third = queue[:3]
    utterances = utterances_of(first)
    page = browser_context.new_page()
    login(page, "coder")
    # The queue: "Continue with …" has the focus, so Enter opens the first transcript.
    expect(page.locator("#next-up")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/code/{first.pk}/")
    expect(page.locator(f"#u-{number(utterances[0])}")).to_have_class(CURRENT)
    panel = page.locator("#key-panel")
    expect(panel).to_contain_text("submit this transcript")
    expect(panel).to_contain_text("open the next transcript in your queue")

    # Too early: Ctrl+Enter, Enter — refused with what is missing, nothing submitted.
    page.keyboard.press("Control+Enter")
    expect(page.locator("#submit-dialog")).to_be_visible()
    expect(page.locator("#submit-confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#coding-alert")).to_contain_text(
        f"Cannot submit yet: {len(utterances)} of {len(utterances)} utterances have no code yet")
    assert Assignment.objects.get(pk=first.pk).status == "pending"
    # Esc cancels the dialog.
    page.keyboard.press("Control+Enter")
    expect(page.locator("#submit-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#submit-dialog")).to_be_hidden()

    # Code everything with one key each, then the four globals.
    for _u in utterances:
        page.keyboard.press(KEY_FOR["Q"])
    for value in (4, 3, 5, 2):
        page.keyboard.press(str(value))
    wait_until(page, lambda: codes_of(first) == {u.pk: "Q" for u in utterances}, what="every code saved")
    wait_until(page, lambda: GlobalRating.objects.filter(assignment=first).count() == 4, what="globals saved")
    expect(page.locator("#save-state")).to_have_text("Saved")

    page.keyboard.press("Control+Enter")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/code/{first.pk}/")
    expect(page.locator(".readonly-note")).to_contain_text("read-only")
    assert Assignment.objects.get(pk=first.pk).status == "submitted"
    # The read-only page: no coding keys, and "Next transcript" focused.
    expect(page.locator("#key-panel")).not_to_contain_text("undo")
    expect(page.locator("#key-panel")).not_to_contain_text("submit")
    expect(page.locator(".legend table").first.locator("kbd")).to_have_count(0)  # the codes: no keys
    cta = page.locator("#next-cta")
    expect(cta).to_have_text(f"Next transcript: {second.transcript.blind_code}")
    expect(cta).to_be_focused()

    page.keyboard.press("Enter")
    page.wait_for_url(f"**/code/{second.pk}/")
    expect(page.locator(f"#u-{number(utterances_of(second)[0])}")).to_have_class(CURRENT)
    page.keyboard.press(KEY_FOR["SR"])
    wait_until(page, lambda: codes_of(second) == {utterances_of(second)[0].pk: "SR"}, what="code on the second")
    expect(page.locator("#save-state")).to_have_text("Saved")
    # > goes on to the next one in the queue, in-progress work kept.
    page.keyboard.press(">")
    page.wait_for_url(f"**/code/{third.pk}/")
    assert Assignment.objects.get(pk=second.pk).status == "in_progress"


def test_adjudicator_accepts_a_or_b_per_row_with_keys_and_submits(browser_context, login, coding_round, coder,
                                                                   coder2, coordinator):
    transcripts = sorted({a.transcript for a in coding_round.assignments.all()}, key=lambda t: t.blind_code)
    target, other = transcripts[0], transcripts[1]
    units = adjudication._units(target)
    n = len(units)
    assert n >= 3
    # coder (A): all Q but utterance 2 = SR; coder2 (B): all Q but utterance 2 = CR and the last = NONE.
    a_codes, b_codes = ["Q"] * n, ["Q"] * n
    a_codes[1], b_codes[1], b_codes[-1] = "SR", "CR", "NONE"
    adjudication._code(coding_round.assignments.get(transcript=target, coder=coder), a_codes, (3, 4, 4, 2))
    adjudication._code(coding_round.assignments.get(transcript=target, coder=coder2), b_codes, (3, 5, 4, 3))
    for user in (coder, coder2):  # a second transcript both agree on, to go on to
        adjudication._code(coding_round.assignments.get(transcript=other, coder=user),
                           ["GI"] * len(adjudication._units(other)), (3, 3, 3, 3))

    base = f"/studies/smoking/rounds/{coding_round.pk}/adjudication/"
    page = browser_context.new_page()
    login(page, "coordinator", next_url=f"{base}{target.pk}/")
    expect(page.locator("thead").first).to_contain_text("Coder A")
    expect(page.locator("body")).not_to_contain_text("coder2")
    expect(page.locator("#consensus-start")).to_be_focused()
    page.keyboard.press("Enter")  # start: the agreed rows are filled in
    expect(page.locator("#consensus-status")).to_have_text("In progress")
    consensus = Assignment.objects.get(kind="consensus", transcript=target)

    def consensus_codes() -> dict[int, str]:
        return dict(UtteranceCode.objects.filter(assignment=consensus).values_list("utterance_id", "code"))

    # Focus starts on the first row without a consensus: the first global the coders disagree on.
    expect(page.locator("#g-SOFTENING_SUSTAIN_TALK")).to_have_class(CURRENT)
    page.keyboard.press("]")  # B's 5; focus moves on to PARTNERSHIP
    expect(page.locator("#g-PARTNERSHIP")).to_have_class(CURRENT)
    page.keyboard.press("j")
    page.keyboard.press("[")  # A's 2 for EMPATHY; focus moves on to the first utterance
    expect(page.locator(f"#u{units[0]}")).to_have_class(CURRENT)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("[")  # A's SR on utterance 2
    for _ in range(n - 3):
        page.keyboard.press("j")
    expect(page.locator(f"#u{units[-1]}")).to_have_class(CURRENT)
    page.keyboard.press(KEY_FOR["CR"])  # neither coder: a code typed with the coding keys
    wait_until(page, lambda: len(consensus_codes()) == n and consensus_codes()[units[-1]] == "CR",
               what="consensus codes saved")
    expect(page.locator("#save-state")).to_have_text("Saved")
    assert consensus_codes()[units[1]] == "SR"
    assert all(consensus_codes()[u] == "Q" for u in units[2:-1]) and consensus_codes()[units[0]] == "Q"
    ratings = dict(GlobalRating.objects.filter(assignment=consensus).values_list("scale", "value"))
    assert ratings == {"CULTIVATING_CHANGE_TALK": 3, "SOFTENING_SUSTAIN_TALK": 5, "PARTNERSHIP": 4, "EMPATHY": 2}

    page.keyboard.press("Control+Enter")
    expect(page.locator("#submit-confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_contain_text("Consensus submitted.")
    consensus.refresh_from_db()
    assert consensus.status == "submitted"
    cta = page.locator("#next-cta")
    expect(cta).to_have_text(f"Next transcript: {other.blind_code}")
    expect(cta).to_be_focused()
    expect(page.locator("#key-panel")).not_to_contain_text("accept coder A")

    page.keyboard.press("Enter")
    page.wait_for_url(f"**{base}{other.pk}/")
    expect(page.locator("#consensus-start")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#consensus-status")).to_have_text("In progress")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("Enter")
    expect(page.locator("#queue-empty")).to_have_text("No other transcript in this round is waiting for a consensus.")
    assert Assignment.objects.get(kind="consensus", transcript=other).status == "submitted"
    assert miti.NO_CODE not in consensus_codes().values()
