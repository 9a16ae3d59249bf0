"""No page, export or report shows an impossible reliability number.

docs/metrics.md, "When a statistic is not estimable".

The demo's shape after a coordinator's round, on every transcript: two coders whose global ratings barely
vary — one rates Empathy 4 on the first transcript, the other 4 on the second, everything else 3. The
formula then gives ICC(2,k) far outside [-1, 1] and inverted intervals; the platform shows "not
estimable" with the reason, never a number, never a band colour. The utterance codes (``default_code``)
vary, so the count scores keep ordinary, estimable ICCs beside them.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import pandas as pd
import pytest

from annotation import miti
from annotation.models import Assignment
from evaluation import exports
from evaluation.reliability import MIN_TARGETS
from evaluation.results import build_results

from .db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db

NUMBER = r"-?\d+\.\d+"


def _barely_varying(first_two: list[int]):
    def globals_for(coder: int, assignment: Assignment) -> dict[str, int]:
        ratings = dict.fromkeys(miti.GLOBAL_KEYS, 3)
        if assignment.transcript_id == first_two[coder]:
            ratings["EMPATHY"] = 4
        return ratings

    return globals_for


@pytest.fixture
def demo_shape(study, coordinator, coder, coder2, demo_dialogues_file):
    first_two: list[int] = []
    # transcript ids are only known once the round exists: fill them in when the first global is rated
    def globals_for(coder_no: int, assignment: Assignment) -> dict[str, int]:
        if not first_two:
            first_two.extend(
                sorted(set(Assignment.objects.filter(coding_round=assignment.coding_round)
                           .values_list("transcript_id", flat=True)))[:2]
            )
        return _barely_varying(first_two)(coder_no, assignment)

    # every demo dialogue in the test split: 8 dialogues × 2 sources = 16 double-coded transcripts
    return coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, globals_for=globals_for,
                            all_test=True)


def _assert_numbers_in_range(text: str) -> int:
    """Every "value [low, high]" and every interval in ``text``: within [-1, 1], ordered. Returns how many."""
    seen = 0
    for low, high in re.findall(rf"\[({NUMBER}), ({NUMBER})\]", text):
        assert -1 <= float(low) <= float(high) <= 1, (low, high)
        seen += 1
    return seen


def test_pages_exports_and_report_never_show_an_impossible_icc(client_for, coordinator, demo_shape, tmp_path) -> None:
    rel = build_results(demo_shape.study).reliability
    assert rel.n_transcripts >= MIN_TARGETS  # enough transcripts: the variance condition decides
    scores = {s.key: s for s in rel.scores}
    empathy = scores["EMPATHY"].icc
    assert empathy.status == "not_estimable" and empathy.icc2_1 is None and empathy.icc2_k is None
    assert "between-transcript variance component" in empathy.reason
    estimable = [s for s in rel.scores if s.icc.single.value is not None]
    assert estimable  # the count scores: a real comparison, not an all-empty table
    for s in rel.scores:
        for e in (s.icc.single, s.icc.average):
            if e.value is not None:
                assert -1 <= e.value <= 1
                assert e.ci95 is None and e.ci_reason or e.ci95[0] <= e.value <= e.ci95[1]

    client = client_for(coordinator)
    for url in ("/studies/smoking/results/reliability/", "/studies/smoking/results/"):
        html = client.get(url).content.decode()
        table = re.search(r'<table id="reliability-table".*?</table>', html, re.S).group(0)
        for key in scores:
            row = re.search(rf'<tr data-score="{key}">(.*?)</tr>', table, re.S).group(1)
            for cell in re.findall(r'<td class="num band-[a-z]+">([^<]*)</td>', row):
                assert -1 <= float(cell) <= 1, (key, cell)
            _assert_numbers_in_range(row)
        row = re.search(r'<tr data-score="EMPATHY">(.*?)</tr>', table, re.S).group(1)
        assert "band-" not in row and row.count(">not estimable<") == 2
        assert 'title="the between-transcript variance component is zero or negative' in row
        assert _assert_numbers_in_range(table) > 0

    # CSV (a zip of tables) and XLSX: empty cells with the reason beside them
    out = tmp_path / "reliability.zip"
    exports.write_export(demo_shape.study, "reliability", "csv", out)
    csv_table = pd.read_csv(io.BytesIO(zipfile.ZipFile(out).read("reliability_scores.csv")), encoding="utf-8-sig")
    xlsx = tmp_path / "reliability.xlsx"
    exports.write_export(demo_shape.study, "reliability", "xlsx", xlsx)
    xlsx_table = pd.read_excel(xlsx, sheet_name="reliability_scores")
    for frame in (csv_table, xlsx_table):
        frame = frame.set_index("score")
        for column in ("icc2_1", "icc2_1_ci_low", "icc2_1_ci_high", "icc2_k", "icc2_k_ci_low", "icc2_k_ci_high"):
            assert frame[column].dropna().between(-1, 1).all(), column
        assert frame[column].notna().any()
        for kind in ("icc2_1", "icc2_k"):
            both = frame[[f"{kind}_ci_low", kind, f"{kind}_ci_high"]].dropna()
            assert (both[f"{kind}_ci_low"] <= both[kind]).all() and (both[kind] <= both[f"{kind}_ci_high"]).all()
        assert pd.isna(frame.loc["EMPATHY", "icc2_1"]) and pd.isna(frame.loc["EMPATHY", "band_icc2_1"])
        assert frame.loc["EMPATHY", "icc_status"] == "not_estimable"
        assert "variance component" in frame.loc["EMPATHY", "icc2_1_reason"]
        assert "variance component" in frame.loc["EMPATHY", "icc2_k_reason"]

    # the report, HTML and PDF: the same cells, and the reasons printed
    report = tmp_path / "report.html"
    exports.write_export(demo_shape.study, "report", "html", report)
    page = report.read_text()
    _assert_numbers_in_range(page)
    withheld = re.search(r'<ul id="report-withheld">(.*?)</ul>', page, re.S).group(1)
    assert "between-transcript variance component" in withheld and "Empathy ICC(2,1)" in withheld
    if shutil.which("pdftotext"):
        pdf = tmp_path / "report.pdf"
        exports.write_export(demo_shape.study, "report", "pdf", pdf)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
        _assert_numbers_in_range(text)
        for value in re.findall(rf"^({NUMBER}) \[", text, re.M):
            assert -1 <= float(value) <= 1
        assert "not estimable" in text and "Not reported as a number, and why" in text

    # the API: null with the reason
    body = client.get("/api/studies/smoking/reliability/").json()
    empathy_api = next(s for s in body["scores"] if s["key"] == "EMPATHY")["icc"]
    assert empathy_api["icc2_1"] is None and empathy_api["icc2_k"] is None
    assert "variance component" in empathy_api["single"]["reason"]
