"""Reliability charts: ICC with its 95 % CI per summary score and per-code κ, over the Cicchetti bands,
as inline SVG in both languages; a statistic that is not estimable is labelled, never drawn."""

from __future__ import annotations

import re

import pytest

from evaluation import charts
from evaluation.reliability_data import SUMMARY_SCORE_KEYS

from .db_helpers import coded_demo_study

BANDS = ("band-poor", "band-fair", "band-good", "band-excellent")


def _ids(svg: str, prefix: str) -> list[str]:
    return re.findall(rf'id="({re.escape(prefix)}[^"]*)"', svg)


def test_icc_chart_marks_estimable_scores_and_labels_the_others() -> None:
    items = [
        charts.Agreement("technical", "Technical", 0.82, 0.61, 0.93),
        charts.Agreement("relational", "Relational", 0.35, None, None),  # no CI: a dot only
        charts.Agreement("pct_cr", "%CR", None),
    ]
    svg = charts.draw_icc(items).decode("utf-8")
    assert sorted(_ids(svg, "icc-")) == ["icc-relational", "icc-technical"]
    assert _ids(svg, "ci-") == ["ci-technical"]
    assert _ids(svg, "not-estimable-") == ["not-estimable-pct_cr"]
    assert "not estimable" in svg
    assert [b for b in BANDS if f'id="{b}"' in svg] == list(BANDS)
    for text in ("poor", "fair", "good", "excellent", "Technical", "%CR", "ICC(2,1) with its 95 percent CI"):
        assert text in svg


def test_kappa_chart_draws_one_bar_per_estimable_code() -> None:
    items = [charts.Agreement("Q", "Q", 0.9), charts.Agreement("SR", "SR", -0.1), charts.Agreement("GI", "GI", None)]
    chinese = {"not estimable": "无法估计", "poor": "差"}
    svg = charts.draw_kappa(items, translate=lambda s: chinese.get(s, s)).decode("utf-8")
    assert sorted(_ids(svg, "kappa-")) == ["kappa-Q", "kappa-SR"]
    assert _ids(svg, "not-estimable-") == ["not-estimable-GI"]
    assert "无法估计" in svg and "差" in svg and "not estimable" not in svg


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    return coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "words"),
    [("en", ("poor", "fair", "good", "excellent", "ICC(2,1) with its 95 percent CI", "Technical global")),
     ("zh-hans", ("差", "尚可", "良好", "优秀", "ICC(2,1) 及其 95% 置信区间", "技术性总体评分"))],
)
def test_reliability_page_shows_both_charts_in_the_page_language(client_for, coordinator, coded, language, words):
    client = client_for(coordinator)
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    page = client.get("/studies/smoking/results/reliability/", **headers).content.decode("utf-8")
    figure = page[page.index('id="chart-icc"'):]
    figure = figure[:figure.index("</figure>")]
    marks = _ids(figure, "icc-")
    unmarked = _ids(figure, "not-estimable-")
    # One mark or one "not estimable" label per summary score, never both.
    assert len(marks) + len(unmarked) == len(SUMMARY_SCORE_KEYS)
    assert not {m.removeprefix("icc-") for m in marks} & {u.removeprefix("not-estimable-") for u in unmarked}
    # The demo study double-codes fewer transcripts than reliability.MIN_TARGETS: every ICC is labelled
    # "not estimable" (in the page's language) and none is drawn (the marks are tested above).
    assert marks == [] and len(unmarked) == len(SUMMARY_SCORE_KEYS)
    assert (language == "en") == ("not estimable" in figure) and (language != "en") == ("无法估计" in figure)
    for word in words:
        assert word in figure, (language, word)

    codes = client.get("/studies/smoking/results/reliability/codes/", HTTP_HX_REQUEST="true", **headers)
    html = codes.content.decode("utf-8")
    kappa = html[html.index('id="chart-kappa"'):]
    kappa = kappa[:kappa.index("</figure>")]
    per_code = re.findall(r'<tr data-code="([^"]+)">', html)
    bars, labelled = _ids(kappa, "kappa-"), _ids(kappa, "not-estimable-")
    assert len(bars) + len(labelled) == len(per_code) > 0
    assert words[0] in kappa
