"""Pages of running work update themselves over HTMX polling while it runs, stop when it is done, and
show only the buttons that fit the state: a run, an import, an export, a coding round."""

from __future__ import annotations

import re

import pytest

from annotation import actions as annotation_actions
from annotation.models import Assignment, CodingRound, ImportBatch, TranscriptSource
from evaluation.models import ExportJob
from inference.models import GenerationRun

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def buttons(html: str) -> list[str]:
    """The buttons of the run's progress card (not the page's language switcher)."""
    card = html.split('<section id="run-progress"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', card)


def test_a_run_page_polls_its_rounds_too_and_shows_the_buttons_of_its_state(
    demo_study, demo_model, coordinator, client_for, django_capture_on_commit_callbacks
):
    from inference import actions

    with django_capture_on_commit_callbacks():
        run = actions.start_run(demo_study, demo_model, split="test", chunk_size=4, created_by=coordinator)
    client = client_for(coordinator)
    url = f"/studies/smoking/generation/runs/{run.pk}/"
    page = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 2s"' in page
    assert buttons(page) == ["Cancel"]  # queued: no Resume, no retry
    assert '<div id="run-items">' in page  # in place on the page, not out of band

    # Running, some rounds done: the poll brings the counts and, out of band, the rounds table.
    GenerationRun.objects.filter(pk=run.pk).update(status="running")
    run.items.filter(round_index=0).update(status="done", response="好的。")
    poll = client.get(url + "?status=done", headers=HX).content.decode()
    assert poll.lstrip().startswith('<section id="run-progress"')
    assert f'hx-get="{url}?status=done" hx-trigger="every 2s"' in poll  # the poll keeps the filter
    assert '<div id="run-items" hx-swap-oob="true">' in poll
    table = poll.split('<div id="run-items"', 1)[1]
    assert table.count("<td>Done</td>") == 4 and "Pending" not in table
    assert buttons(poll) == ["Cancel"]  # running: no Resume

    # Done: the last poll leaves every round Done and stops polling; no button is left to press.
    run.items.update(status="done", response="好的。")
    GenerationRun.objects.filter(pk=run.pk).update(status="done")
    poll = client.get(url, headers=HX).content.decode()
    assert "hx-trigger" not in poll
    assert "Pending" not in poll and poll.count("<td>Done</td>") == run.items.count()
    assert buttons(poll) == []
    page = client.get(url).content.decode()
    assert "hx-trigger" not in page and buttons(page) == [] and "hx-swap-oob" not in page

    # Failed: Resume and the retry of the failed rounds.
    run.items.filter(round_index=1).update(status="failed", error="boom")
    GenerationRun.objects.filter(pk=run.pk).update(status="failed")
    page = client.get(url).content.decode()
    assert "hx-trigger" not in page
    assert buttons(page) == ["Retry"] * 4 + ["Resume", "Retry failed rounds"]


def test_an_import_page_polls_until_the_import_is_done(study, coordinator, client_for, demo_dialogues_file):
    batch = annotation_actions.import_dialogues(study, path=str(demo_dialogues_file), created_by=coordinator)
    client = client_for(coordinator)
    url = f"/studies/smoking/imports/{batch.pk}/"
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", progress=0.5)
    page = client.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in page and ">Refresh</a>" in page
    ImportBatch.objects.filter(pk=batch.pk).update(status="done", progress=1.0)
    page = client.get(url).content.decode()
    assert "hx-trigger" not in page and ">Refresh</a>" not in page
    assert "Browse the dialogues" in page


def test_an_export_row_polls_until_the_export_is_done(study, coordinator, client_for):
    job = ExportJob.objects.create(study=study, requested_by=coordinator, kind="codes", format="csv")
    client = client_for(coordinator)
    status_url = f"/studies/smoking/results/exports/{job.pk}/"
    for url in ("/studies/smoking/results/exports/", status_url):
        page = client.get(url).content.decode()
        assert f'hx-get="{status_url}" hx-trigger="every 1s"' in page, url
        assert "export-download" not in page
    ExportJob.objects.filter(pk=job.pk).update(status="done", progress=1.0, rows=3)
    for url in ("/studies/smoking/results/exports/", status_url):
        page = client.get(url).content.decode()
        assert "hx-trigger" not in page, url
        assert 'class="export-download"' in page and ">Refresh</a>" not in page


def test_a_round_page_polls_while_coders_are_at_work(study, coordinator, coder, coder2, client_for, demo_dialogues_file):
    annotation_actions.import_dialogues(study, path=str(demo_dialogues_file), created_by=coordinator)
    reference = annotation_actions.ensure_reference_source(study)
    coding_round = annotation_actions.create_coding_round(
        study, name="R1", sources=[reference], coders=[coder, coder2], overlap=0.0, seed=1
    )
    client = client_for(coordinator)
    url = f"/studies/smoking/rounds/{coding_round.pk}/"
    page = client.get(url).content.decode()
    assert f'<section id="round-progress" hx-get="{url}" hx-trigger="every 5s"' in page
    poll = client.get(url, headers=HX).content.decode()
    assert poll.lstrip().startswith('<section id="round-progress"') and "<html" not in poll
    assert "0 of 4 codings submitted" in poll

    Assignment.objects.filter(coding_round=coding_round).update(status="submitted")
    poll = client.get(url, headers=HX).content.decode()
    assert "hx-trigger" not in poll and "4 of 4 codings submitted" in poll
    Assignment.objects.filter(coding_round=coding_round).update(status="pending")
    CodingRound.objects.filter(pk=coding_round.pk).update(status="closed")
    assert "hx-trigger" not in client.get(url).content.decode()  # a closed round is still
    assert TranscriptSource.objects.count() == 1
