"""Machine coders in a real browser: a coordinator adds a trained classifier to a round, its codings
appear and the machine vs human table renders; a coder of an assisted round accepts the machine's
suggestion with the Enter key and the stored code records it.

Celery runs eagerly here (the live server's request runs the chunks when it commits), so the test
needs no worker; the database is checked from the test thread.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation import actions as annotation_actions
from annotation.models import Assignment, Utterance, UtteranceCode
from inference.coders import actions
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = pytest.mark.browser


@pytest.fixture
def eager():
    from celery import current_app

    previous = current_app.conf.task_always_eager, current_app.conf.task_eager_propagates
    current_app.conf.task_always_eager, current_app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        current_app.conf.task_always_eager, current_app.conf.task_eager_propagates = previous


@pytest.fixture
def trained(study, coordinator, coder, coder2, demo_dialogues_file, settings, tmp_path, eager):
    settings.MI_MODEL_STORE = tmp_path / "models"
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, overlap=1.0)
    machine = actions.register_classifier(study, name="Utterance classifier", training_round=coded.coding_round,
                                          folds=3, created_by=coordinator)  # trained on commit (eager)
    machine.refresh_from_db()
    assert machine.status == "ready", machine.error
    return coded, machine


def test_coordinator_adds_a_machine_coder_and_sees_machine_vs_human(browser_context, login, trained):
    coded, machine = trained
    page = browser_context.new_page()
    login(page, "coordinator", next_url=f"/studies/{coded.study.slug}/machine-coders/{machine.pk}/")
    expect(page.locator("#validation")).to_contain_text("kappa")
    page.select_option("#add-to-round select[name=coding_round]", str(coded.coding_round.pk))
    page.click("#add-to-round button[type=submit]")
    expect(page.locator("#coding-runs")).to_contain_text(coded.coding_round.name)
    work = Assignment.objects.filter(coding_round=coded.coding_round, coder=machine.service_user)
    transcripts = Assignment.objects.filter(coding_round=coded.coding_round, kind="coding").values("transcript").distinct()
    assert work.count() == transcripts.count() and set(work.values_list("status", flat=True)) == {"submitted"}
    n_codes = UtteranceCode.objects.filter(assignment__in=work).count()
    assert n_codes == UtteranceCode.objects.filter(assignment__coding_round=coded.coding_round,
                                                   assignment__coder__username="coder").count()

    page.goto(f"/studies/{coded.study.slug}/results/machine/?round={coded.coding_round.pk}")
    expect(page.locator("#machine-summary")).to_contain_text(f"coded {n_codes} utterances")
    table = page.locator("#machine-vs-human")
    expect(table.locator("tr[data-against=coder]")).to_be_visible()
    expect(table.locator("tr[data-against=coder2]")).to_be_visible()
    expect(page.locator("#machine-scores")).to_be_visible()
    expect(page.locator("#machine-confusion")).to_be_visible()


def test_coder_accepts_a_suggestion_with_the_keyboard(browser_context, login, trained, coder, coder2, coordinator):
    coded, machine = trained
    assisted = annotation_actions.create_coding_round(
        coded.study, name="Assisted", sources=list(coded.coding_round.sources.all()), coders=[coder, coder2],
        overlap=0.0, seed=5, created_by=coordinator, purpose="assisted",
    )
    run = actions.start_coding_run(machine, assisted)  # chunks run on commit (eager)
    run.refresh_from_db()
    assert run.status == "done", run.error
    assignment = Assignment.objects.filter(coding_round=assisted, coder=coder).order_by("position").first()
    first = Utterance.objects.filter(volley__transcript=assignment.transcript).order_by("volley__index", "index")[0]
    suggested = UtteranceCode.objects.get(assignment__coding_round=assisted, assignment__coder=machine.service_user,
                                          utterance=first).code

    page = browser_context.new_page()
    login(page, "coder")
    page.goto(f"/code/{assignment.pk}/")
    row = page.locator("#u-1")
    expect(row).to_have_class(re.compile(r"\bis-current\b"))
    expect(row).to_have_attribute("data-suggestion", suggested)
    expect(row.locator(".suggestion")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#save-state")).to_contain_text("Saved")
    stored = UtteranceCode.objects.get(assignment=assignment, utterance=first)
    assert (stored.code, stored.suggestion_accepted) == (suggested, True)
    expect(page.locator("#u-1 [data-accepted]")).to_be_visible()
