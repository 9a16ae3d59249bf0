"""The results dashboard in a real browser: threshold lines, reliability table, HTMX tabs; the PDF report opens."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from evaluation import actions, exports
from tests.evaluation.db_helpers import coded_demo_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    actions.compute_run_metrics(coded.run)
    return coded


def test_dashboard_shows_threshold_lines_and_reliability_table(browser_context, login, coded) -> None:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "coordinator", next_url="/studies/smoking/results/")

    # the inline SVG chart draws a Fair and a Good line for each thresholded score
    chart = page.locator("#chart-summary svg")
    chart.wait_for()
    for key in ("technical", "relational", "pct_cr", "r_to_q"):
        for level in ("fair", "good"):
            line = page.locator(f"#chart-summary g#threshold-{level}-{key} path")
            assert line.count() == 1, (level, key)
            assert line.bounding_box()["width"] > 100  # drawn across the panel, not an empty group
    # the reliability table: 8 double-coded transcripts are fewer than MIN_TARGETS, so every ICC is
    # "not estimable" with its reason on hover and no band colour; the utterance table (far more than
    # 10 utterances) is coloured by band; the published reference bands beside them
    table = page.locator("#reliability-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == 20
    assert table.locator("td[class*='band-']").count() == 0
    withheld = table.locator("td.nodata[title^='fewer than 10 double-coded units']")
    # (scores that never vary, e.g. a code nobody used, are "n/a" — undefined — instead)
    assert withheld.count() > 20 and withheld.first.inner_text() == "not estimable"
    banded = page.locator("#utterance-reliability td[class*='band-']")
    assert banded.count() > 0
    colour = banded.first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.locator("#reference-bands").inner_text().count("0.31–0.64") == 1
    assert page.locator("#utterance-reliability").is_visible()
    assert "demo-mi-model" in page.locator("#metrics-table").inner_text()

    # HTMX tab: the panel is swapped and the URL pushed, without a full page load
    page.evaluate("window.__marker = 1")
    page.click("nav.tabs >> text=Reliability")
    page.wait_for_url("**/results/reliability/")
    page.locator("#per-code-reliability").wait_for()
    assert page.evaluate("window.__marker") == 1
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Reliability"
    # the round selector swaps the panel too
    page.select_option("#round-select", label="Round 1")
    page.wait_for_url(f"**/results/reliability/?round={coded.coding_round.pk}*")  # "&group_by=…" follows
    page.locator("#drift").wait_for()
    assert page.evaluate("window.__marker") == 1
    assert errors == []


def test_coder_is_refused_in_the_browser(browser_context, login, coded) -> None:
    page = browser_context.new_page()
    login(page, "coder", next_url="/code/")
    response = page.goto("/studies/smoking/results/")
    assert response.status == 403
    assert "threshold" not in page.content()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_pdf_report_renders_its_first_page(coded, tmp_path) -> None:
    pdf = tmp_path / "report.pdf"
    exports.write_export(coded.study, "report", "pdf", pdf)
    subprocess.run(["pdftoppm", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True,
                   capture_output=True, timeout=60)
    pages = list(tmp_path.glob("page*.png"))
    assert len(pages) == 1 and pages[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pages[0].stat().st_size > 10_000


def test_printable_report_prints_to_pdf_in_chromium(browser_context, login, coded, tmp_path) -> None:
    page = browser_context.new_page()
    login(page, "coordinator", next_url="/studies/smoking/results/")
    page.goto("/studies/smoking/results/report/")
    assert page.locator("g#threshold-good-technical").count() == 1
    page.emulate_media(media="print")
    assert not page.locator("button").is_visible()  # the print button is screen-only
    out = tmp_path / "printed.pdf"
    page.pdf(path=str(out), format="A4")
    assert out.read_bytes()[:5] == b"%PDF-"


def test_export_progress_bar_polls_until_the_download_link(browser_context, login, coded, monkeypatch, settings,
                                                           tmp_path) -> None:
    from evaluation import tasks
    from evaluation.models import ExportJob

    settings.MI_EXPORT_DIR = tmp_path / "exports"
    page = browser_context.new_page()
    login(page, "coordinator", next_url="/studies/smoking/results/exports/")
    # a job a worker is busy with: the row shows its progress and polls for news (its claim is old, so
    # the "worker" below may take it over, as a redelivery after a worker died would)
    job = ExportJob.objects.create(study=coded.study, kind="codes", format="csv", status="running", progress=0.3,
                                   claim_token="gone-worker", claimed_at=timezone.now() - timedelta(days=1))
    page.reload()
    bar = page.locator(f"#export-job-{job.pk} .progress span")
    assert bar.get_attribute("style") == "width: 30%"
    ExportJob.objects.filter(pk=job.pk).update(progress=0.7)
    # (expect, not wait_for_function: the page's Content-Security-Policy forbids the eval the latter uses)
    expect(bar).to_have_attribute("style", "width: 70%", timeout=10_000)
    tasks.run_export.apply(args=[job.pk])  # the "worker" finishes it
    link = page.locator(f"#export-job-{job.pk} a.export-download")
    link.wait_for(timeout=10_000)
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "smoking-codes.csv"

    # a new export from the form: the row is added in place (hx-post), the task runs (here eagerly)
    monkeypatch.setattr(tasks.run_export, "apply_async", lambda args, kwargs=None, **options: tasks.run_export.apply(args))
    page.select_option("#export-kind", "summaries")
    page.select_option("#export-format", "xlsx")
    page.click("form.card button[type=submit]")
    expect(page.locator("#export-jobs tbody tr")).to_have_count(2, timeout=10_000)
    new = ExportJob.objects.exclude(pk=job.pk).get()
    # the new row is first, and shows the download link once the job is done (at once, or by polling)
    assert page.locator("#export-jobs tbody tr").first.get_attribute("id") == f"export-job-{new.pk}"
    page.locator(f"#export-job-{new.pk} a.export-download").wait_for(timeout=10_000)
    new.refresh_from_db()
    assert new.status == "done" and new.kind == "summaries" and new.format == "xlsx"
