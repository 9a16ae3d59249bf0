"""Results pages: who may see them (personas), what they show, HTMX partials with href fallbacks."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from annotation.models import Assignment
from evaluation import actions
from evaluation.models import ExportJob, MetricReport

from .db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db

PAGES = [
    "/studies/smoking/results/",
    "/studies/smoking/results/miti/",
    "/studies/smoking/results/reliability/",
    "/studies/smoking/results/reliability/codes/",
    "/studies/smoking/results/metrics/",
    "/studies/smoking/results/charts/summary.svg",
    "/studies/smoking/results/charts/counts.png",
    "/studies/smoking/results/report/",
    "/studies/smoking/results/tables/",
    "/studies/smoking/results/tables/download.tex",
    "/studies/smoking/results/exports/",
]


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    actions.compute_run_metrics(coded.run)
    return coded


class _HxCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.missing: list[str] = []
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "hx-get" not in a:
            return
        self.count += 1
        fallback = a.get("href") if tag == "a" else a.get("action") if tag == "form" else None
        if tag == "tr":  # polling rows carry a "Refresh" link inside (checked separately)
            return
        if fallback != a["hx-get"]:
            self.missing.append(f"<{tag} hx-get={a['hx-get']!r}> without the same href/action")


def _hx_check(html: str) -> int:
    parser = _HxCollector()
    parser.feed(html)
    assert parser.missing == []
    return parser.count


def test_coordinator_sees_every_page(client_for, coordinator, coded) -> None:
    client = client_for(coordinator)
    for url in PAGES:
        assert client.get(url).status_code == 200, url


def test_coder_gets_403_and_outsider_404_on_every_page(client, coder, outsider, coded) -> None:
    job = ExportJob.objects.create(study=coded.study, kind="codes", format="csv")
    urls = [*PAGES, f"/studies/smoking/results/exports/{job.pk}/", f"/studies/smoking/results/exports/{job.pk}/download/"]
    client.force_login(coder)
    for url in urls:
        assert client.get(url).status_code == 403, url
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404, url


def test_anonymous_is_sent_to_login(client, coded) -> None:
    response = client.get("/studies/smoking/results/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_coder_cannot_post_compute_or_export(client, coder, outsider, coded) -> None:
    client.force_login(coder)
    assert client.post(f"/studies/smoking/results/metrics/{coded.run.pk}/compute/").status_code == 403
    assert client.post("/studies/smoking/results/exports/", {"kind": "codes", "format": "csv"}).status_code == 403
    client.force_login(outsider)
    assert client.post("/studies/smoking/results/exports/", {"kind": "codes", "format": "csv"}).status_code == 404
    assert ExportJob.objects.count() == 0


def test_dashboard_shows_progress_scores_thresholds_reliability_and_metrics(client_for, coordinator, coded) -> None:
    html = client_for(coordinator).get("/studies/smoking/results/").content.decode()
    # progress: 16 of 16 coding assignments submitted in Round 1
    assert re.search(r"Round 1</th><td class=\"num\">16 / 16</td>", html)
    # both sources, by their coordinator-only labels
    assert "Reference dialogues" in html and "demo-mi-model" in html
    # the aggregation rule is stated on the page
    assert "contributes the mean of its coders" in html
    # inline SVG with the Fair and Good lines for each thresholded score
    for key in ("technical", "relational", "pct_cr", "r_to_q"):
        assert f'id="threshold-fair-{key}"' in html and f'id="threshold-good-{key}"' in html
    # reliability table colour-coded by band, with the published reference bands beside it
    assert 'id="reliability-table"' in html and re.search(r'class="num band-(poor|fair|good|excellent)"', html)
    assert "0.75–1.00" in html and "0.31–0.64" in html
    assert 'id="utterance-reliability"' in html
    # automatic metrics of the run
    report = MetricReport.objects.get(run=coded.run)
    assert f'{report.pooled["bleu4"]:.2f}' in html
    assert _hx_check(html) >= 5


def test_reliability_page_numbers_match_the_computation(client_for, coordinator, coded) -> None:
    from evaluation.results import build_results

    results = build_results(coded.study)
    html = client_for(coordinator).get("/studies/smoking/results/reliability/").content.decode()
    u = results.reliability.utterances
    assert f"{u.alpha.alpha:.3f}" in html
    assert f"{u.pairs[0].kappa.kappa:.3f}" in html
    sr = next(s for s in results.reliability.scores if s.key == "SR")
    row = re.search(r'<tr data-score="SR">(.*?)</tr>', html, re.S).group(1)
    # 8 double-coded transcripts: fewer than MIN_TARGETS, so every ICC is "not estimable" with the reason
    # on hover and no band colour
    assert sr.icc.status == "not_estimable" and sr.icc.icc2_1 is None
    assert row.count('title="fewer than 10 double-coded units') == 3 and "not estimable" in row
    assert "band-" not in row
    assert 'id="not-estimable-note"' in html
    assert 'id="drift"' in html
    # per-code agreement (11 more passes over the utterances) loads on its own, with a no-JS link
    assert 'id="per-code-reliability"' not in html and 'id="per-code-link"' in html
    _hx_check(html)
    partial = client_for(coordinator).get(
        "/studies/smoking/results/reliability/codes/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert partial.lstrip().startswith('<section id="per-code-section">')
    sr_code = next(c for c in results.reliability.utterances.per_code if c.code == "SR")
    row = re.search(r'<tr data-code="SR">(.*?)</tr>', partial, re.S).group(1)
    assert f"{sr_code.alpha.alpha:.3f}" in row and f"{sr_code.fleiss.kappa:.3f}" in row
    full = client_for(coordinator).get("/studies/smoking/results/reliability/codes/").content.decode()
    assert "<html" in full and 'id="per-code-reliability"' in full and 'id="drift"' in full


def test_htmx_request_gets_the_panel_partial_only(client_for, coordinator, coded) -> None:
    client = client_for(coordinator)
    full = client.get("/studies/smoking/results/miti/").content.decode()
    partial = client.get("/studies/smoking/results/miti/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and "<html" not in partial
    assert 'id="miti-by-source"' in partial and 'id="miti-codings"' in partial
    # history restore asks for the whole page
    restore = client.get(
        "/studies/smoking/results/miti/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    ).content.decode()
    assert "<html" in restore


def test_round_filter_and_unknown_round(client_for, coordinator, coded) -> None:
    client = client_for(coordinator)
    ok = client.get(f"/studies/smoking/results/?round={coded.coding_round.pk}")
    assert ok.status_code == 200 and 'selected>Round 1<' in ok.content.decode()
    assert client.get("/studies/smoking/results/?round=99999").status_code == 404
    assert client.get("/studies/smoking/results/?round=abc").status_code == 404


def test_chart_downloads(client_for, coordinator, coded) -> None:
    client = client_for(coordinator)
    svg = client.get("/studies/smoking/results/charts/summary.svg?download=1")
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg["Content-Disposition"] == 'attachment; filename="smoking-summary.svg"'
    assert svg.content.startswith(b"<svg") and b'id="threshold-good-technical"' in svg.content
    png = client.get("/studies/smoking/results/charts/summary.png")
    assert png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/studies/smoking/results/charts/nope.svg").status_code == 404
    assert client.get("/studies/smoking/results/charts/summary.gif").status_code == 404


def test_compute_button_queues_the_task_after_commit(client_for, coordinator, coded, django_capture_on_commit_callbacks,
                                                     monkeypatch) -> None:
    sent: list[int] = []
    from evaluation import tasks

    monkeypatch.setattr(tasks.compute_run_metrics, "apply_async", lambda args, kwargs=None, **options: sent.extend(args))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(coordinator).post(f"/studies/smoking/results/metrics/{coded.run.pk}/compute/")
    assert response.status_code == 302 and response["Location"] == "/studies/smoking/results/metrics/"
    assert sent == [coded.run.pk]


def test_metrics_table_lists_runs_with_and_without_report(client_for, coordinator, coded) -> None:
    from .db_helpers import finished_run

    finished_run(coded.study, name="qwen-mi-lora", base=coded.run.model)
    html = client_for(coordinator).get("/studies/smoking/results/metrics/").content.decode()
    assert "qwen-mi-lora" in html and "fine-tuned" in html and "not computed yet" in html
    # base model row comes before its fine-tune
    assert html.index("demo-mi-model</th>") < html.index("qwen-mi-lora")


def test_empty_study_shows_not_enough_data(client_for, coordinator, study) -> None:
    html = client_for(coordinator).get("/studies/smoking/results/").content.decode()
    assert "No coding rounds yet." in html
    assert "No submitted codings yet" in html
    assert "Not enough data" in html


def test_submitted_count_reflects_unsubmitted_work(client_for, coordinator, study, coder, coder2,
                                                  demo_dialogues_file) -> None:
    coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, submit=False)
    html = client_for(coordinator).get("/studies/smoking/results/").content.decode()
    assert re.search(r"Round 1</th><td class=\"num\">0 / 16</td>", html)
    assert Assignment.objects.filter(status="in_progress").count() == 16
