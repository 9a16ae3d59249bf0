"""Exports: long-format codes, summaries, aggregates, reliability, metrics, the report; jobs and command."""

from __future__ import annotations

import csv
import html
import io
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Assignment, Utterance, UtteranceCode
from evaluation import actions, exports, queries
from evaluation.models import ExportJob
from evaluation.results import build_results

from .db_helpers import coded_demo_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    actions.compute_run_metrics(coded.run)
    return coded


@pytest.fixture
def export_dir(tmp_path, settings):
    settings.MI_EXPORT_DIR = tmp_path / "exports"
    return settings.MI_EXPORT_DIR


def test_codes_long_format_one_row_per_utterance_per_coder(coded, tmp_path) -> None:
    out = tmp_path / "codes.csv"
    rows = exports.write_export(coded.study, "codes", "csv", out)
    n_utterances = {
        t: Utterance.objects.filter(volley__transcript_id=t).count()
        for t in Assignment.objects.values_list("transcript_id", flat=True)
    }
    expected = sum(n_utterances[a.transcript_id] for a in Assignment.objects.filter(status="submitted"))
    assert rows == expected == UtteranceCode.objects.count()
    frame = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert list(frame.columns) == [
        "round", "assignment_kind", "coder_id", "coder", "blind_code", "source", "source_kind",
        "generation_run_id", "volley_index", "utterance_index", "utterance_text", "code", "submitted_at",
    ]
    assert len(frame) == expected
    # every exported code equals the stored one
    stored = {
        (a, u): c for a, u, c in UtteranceCode.objects.values_list("assignment__coder_id", "utterance_id", "code")
    }
    first = UtteranceCode.objects.select_related("utterance__volley__transcript", "assignment").order_by("id").first()
    row = frame[
        (frame.coder_id == first.assignment.coder_id)
        & (frame.blind_code == first.utterance.volley.transcript.blind_code)
        & (frame.volley_index == first.utterance.volley.index + 1)
        & (frame.utterance_index == first.utterance.index + 1)
    ]
    assert len(row) == 1
    assert row.iloc[0].code == stored[(first.assignment.coder_id, first.utterance_id)]
    assert row.iloc[0].utterance_text == first.utterance.text
    assert set(frame.source) == {"Reference dialogues", "demo-mi-model"}
    assert set(frame.generation_run_id.astype(str)) == {"", str(coded.run.pk)}


def test_codes_as_parquet_equal_the_csv_and_xlsx_continues_on_a_new_sheet_at_the_row_limit(
    coded, tmp_path, monkeypatch
) -> None:
    rows_csv = exports.write_export(coded.study, "codes", "csv", tmp_path / "codes.csv")
    rows_parquet = exports.write_export(coded.study, "codes", "parquet", tmp_path / "codes.parquet")
    assert rows_parquet == rows_csv > 0
    from_csv = pd.read_csv(tmp_path / "codes.csv", encoding="utf-8-sig", keep_default_na=False)
    from_parquet = pd.read_parquet(tmp_path / "codes.parquet")
    assert list(from_parquet.columns) == list(from_csv.columns)
    assert from_parquet["code"].tolist() == from_csv["code"].tolist()
    assert from_parquet["utterance_text"].tolist() == from_csv["utterance_text"].tolist()
    assert from_parquet["coder_id"].tolist() == from_csv["coder_id"].tolist()
    # Excel's 1,048,576 rows, scaled down: 10 data rows per sheet (the header repeats on each).
    monkeypatch.setattr(exports, "XLSX_SHEET_ROWS", 10)
    rows_xlsx = exports.write_export(coded.study, "codes", "xlsx", tmp_path / "codes.xlsx")
    assert rows_xlsx == rows_csv
    sheets = pd.read_excel(tmp_path / "codes.xlsx", sheet_name=None, keep_default_na=False)
    n_sheets = -(-rows_csv // 10)
    assert n_sheets >= 3
    assert list(sheets) == ["codes", *[f"codes ({i})" for i in range(2, n_sheets + 1)]]
    assert [len(frame) for frame in sheets.values()] == [10] * (n_sheets - 1) + [rows_csv - 10 * (n_sheets - 1)]
    assert pd.concat(sheets.values())["code"].tolist() == from_csv["code"].tolist()
HOSTILE_TEXTS = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tTAB=1", "\r=1+1", "plain 'quoted' text"]


def test_csv_cells_starting_like_a_formula_get_a_quote_prefix() -> None:
    assert [exports.csv_cell(t) for t in HOSTILE_TEXTS] == [
        "'=cmd|' /C calc'!A0", "'+SUM(1,2)", "'-2+3", "'@SUM(A1)", "'\tTAB=1", "'\r=1+1", "plain 'quoted' text",
    ]
    # Numbers stay numbers (a negative score is not a formula); only text is prefixed.
    assert exports.csv_cell(-0.5) == -0.5 and exports.csv_cell(3) == 3 and exports.csv_cell(None) is None


def test_code_exports_neutralise_formulas_in_csv_and_keep_exact_text_in_xlsx_and_jsonl(coded, tmp_path) -> None:
    import json

    import openpyxl

    utterances = list(Utterance.objects.filter(codes__isnull=False).distinct().order_by("id")[: len(HOSTILE_TEXTS)])
    for utterance, text in zip(utterances, HOSTILE_TEXTS, strict=True):
        Utterance.objects.filter(pk=utterance.pk).update(text=text)
    n_rows = exports.write_export(coded.study, "codes", "csv", tmp_path / "codes.csv")

    with (tmp_path / "codes.csv").open(encoding="utf-8-sig", newline="") as handle:
        texts = [row["utterance_text"] for row in csv.DictReader(handle)]
    assert len(texts) == n_rows
    assert not [t for t in texts if t.startswith(exports.FORMULA_STARTS)]
    assert {"'" + t for t in HOSTILE_TEXTS[:-1]} <= set(texts) and HOSTILE_TEXTS[-1] in texts

    # CSV tables in a zip (several tables) go through the same cell rule.
    table = exports._csv_bytes(exports.Table("t", ["x"], [[t] for t in HOSTILE_TEXTS])).decode("utf-8-sig")
    cells = [row[0] for row in csv.reader(io.StringIO(table, newline=""))][1:]
    assert cells == [exports.csv_cell(t) for t in HOSTILE_TEXTS]

    # XLSX writes inline strings (never formulas): the text is exactly what was coded.
    exports.write_export(coded.study, "codes", "xlsx", tmp_path / "codes.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "codes.xlsx").active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    column = header.index("utterance_text")
    cells = [row[column] for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type != "f" for c in cells)
    assert set(HOSTILE_TEXTS[:-2]) <= {c.value for c in cells}  # openpyxl drops the \r of "\r=1+1" on read

    # JSONL: one object per row, the exact text.
    assert exports.write_export(coded.study, "codes", "jsonl", tmp_path / "codes.jsonl") == n_rows
    records = [json.loads(line) for line in (tmp_path / "codes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == n_rows and set(HOSTILE_TEXTS) <= {r["utterance_text"] for r in records}
    assert list(records[0]) == header


def test_blind_export_has_no_source_or_model(coded, tmp_path) -> None:
    out = tmp_path / "codes.xlsx"
    exports.write_export(coded.study, "codes", "xlsx", out, blind=True)
    frame = pd.read_excel(out, sheet_name="codes")
    assert "source" not in frame.columns and "generation_run_id" not in frame.columns
    text = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "demo-mi-model" not in text and "Reference dialogues" not in text
    metrics = tmp_path / "metrics.csv"
    exports.write_export(coded.study, "metrics", "csv", metrics, blind=True)
    assert "demo-mi-model" not in metrics.read_text(encoding="utf-8-sig")


def test_summaries_and_aggregates_equal_the_dashboard_numbers(coded, tmp_path) -> None:
    results = build_results(coded.study)
    out = tmp_path / "all.xlsx"
    exports.write_export(coded.study, "all", "xlsx", out)
    sheets = pd.read_excel(out, sheet_name=None)
    assert set(sheets) == {
        "summaries", "per_source", "per_coder", "aggregation_note", "reliability_scores",
        "reliability_utterances", "reliability_drift", "reliability_info", "metrics",
    }
    summaries = sheets["summaries"]
    assert len(summaries) == 16
    for s in results.summaries.codings:
        row = summaries[(summaries.coder_id == s.coder_id) & (summaries.blind_code == s.blind_code)].iloc[0]
        assert row.SR == s.counts["SR"] and row.CR == s.counts["CR"] and row.Q == s.counts["Q"]
        assert row.relational == pytest.approx(s.scores["relational"])
        assert row.relational_status == s.status("relational")
    per_source = sheets["per_source"]
    for src in results.sources:
        row = per_source[(per_source.source == src.source.label) & (per_source.score == "technical")].iloc[0]
        assert row["mean"] == pytest.approx(src.stats["technical"].mean)
        assert row["n"] == src.stats["technical"].n
        assert row["share_fair"] == pytest.approx(src.stats["technical"].share_fair)
    rel = sheets["reliability_scores"]
    for score in results.reliability.scores:
        row = rel[rel.score == score.key].iloc[0]
        if score.icc.status == "ok":
            assert row.icc2_1 == pytest.approx(score.icc.icc2_1, abs=1e-12)
            assert row.band_icc2_1 == score.icc.band
        else:
            assert pd.isna(row.icc2_1) and row.icc_status == score.icc.status != "ok"
    metrics = sheets["metrics"].iloc[0]
    report = coded.run.metric_report
    assert metrics.bleu4 == pytest.approx(report.pooled["bleu4"], abs=1e-9)
    assert metrics.rougeL == pytest.approx(report.pooled["rougeL"], abs=1e-9)


def test_reliability_csv_is_a_zip_of_tables(coded, tmp_path) -> None:
    out = tmp_path / "rel.zip"
    exports.write_export(coded.study, "reliability", "csv", out)
    names = zipfile.ZipFile(out).namelist()
    assert names == ["reliability_scores.csv", "reliability_utterances.csv", "reliability_drift.csv",
                     "reliability_info.csv"]
    text = zipfile.ZipFile(out).read("reliability_utterances.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    alpha = build_results(coded.study).reliability.utterances.alpha.alpha
    assert float(rows[1][2]) == pytest.approx(alpha, abs=1e-12)


def test_html_report_has_methods_tables_and_charts(coded, tmp_path) -> None:
    out = tmp_path / "report.html"
    exports.write_export(coded.study, "report", "html", out)
    page = out.read_text()
    for text in ("MITI 4.2.1", "Methods", "Round 1", "coder2", "MITI results per source", "Reliability",
                 "Automatic metrics", "@media print", "BLEU-4", "Cicchetti"):
        assert text in page, text
    assert 'id="threshold-fair-technical"' in page
    # self-contained: no stylesheet, script or image is loaded from elsewhere
    assert "<link" not in page and "<script" not in page and "<img" not in page


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_pdf_report_opens(coded, tmp_path) -> None:
    out = tmp_path / "report.pdf"
    exports.write_export(coded.study, "report", "pdf", out)
    assert out.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")], check=True,
                   capture_output=True, timeout=60)
    page = next(tmp_path.glob("page*.png"))
    assert page.stat().st_size > 10_000  # a rendered A4 page with text, not a blank image
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, timeout=60).stdout
    assert "MITI report" in text and "Reliability" in text and "demo-mi-model" in text


def test_export_job_runs_with_progress_and_downloads(client_for, coordinator, coded, export_dir,
                                                      django_capture_on_commit_callbacks, monkeypatch) -> None:
    from evaluation import tasks

    # Sent by name through the task's own apply_async: run it here instead of on a worker.
    monkeypatch.setattr(tasks.run_export, "apply_async", lambda args, kwargs=None, **options: tasks.run_export.apply(args))
    client = client_for(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/studies/smoking/results/exports/", {"kind": "codes", "format": "xlsx", "round": ""})
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.status == "done" and job.progress == 1.0 and job.requested_by == coordinator
    assert job.rows == UtteranceCode.objects.count()
    assert Path(job.file_path).name == "smoking-codes.xlsx" and Path(job.file_path).is_relative_to(export_dir)
    status = client.get(f"/studies/smoking/results/exports/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in status and "Download" in status
    download = client.get(f"/studies/smoking/results/exports/{job.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="smoking-codes.xlsx"'
    body = b"".join(download.streaming_content)
    assert len(pd.read_excel(io.BytesIO(body))) == job.rows


def test_code_export_reports_progress(coded) -> None:
    seen: list[float] = []
    _header, rows, total = exports.code_rows(coded.study, progress=seen.append)
    assert sum(1 for _ in rows) == total
    assert seen == sorted(seen) and len(seen) >= 10 and seen[-1] == pytest.approx(1.0, abs=0.05)


def test_running_job_polls_and_has_refresh_link(client_for, coordinator, coded) -> None:
    job = ExportJob.objects.create(study=coded.study, kind="codes", format="csv", status="running", progress=0.4)
    html = client_for(coordinator).get("/studies/smoking/results/exports/").content.decode()
    row = html[html.index(f'id="export-job-{job.pk}"'):]
    row = row[: row.index("</tr>")]
    assert 'hx-trigger="every 1s"' in row and f'href="/studies/smoking/results/exports/{job.pk}/"' in row
    assert 'aria-valuenow="40"' in row
    # not downloadable before it is done
    assert client_for(coordinator).get(f"/studies/smoking/results/exports/{job.pk}/download/").status_code == 404


def test_bad_export_requests_are_refused(client_for, coordinator, coded, django_capture_on_commit_callbacks) -> None:
    client = client_for(coordinator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/studies/smoking/results/exports/", {"kind": "report", "format": "xlsx"}, follow=True)
    assert "'report' can be exported as html or pdf, not 'xlsx'." in html.unescape(response.content.decode())
    assert ExportJob.objects.count() == 0 and callbacks == []


def test_failed_export_job_records_the_error(coded, export_dir, monkeypatch) -> None:
    from evaluation import tasks

    job = ExportJob.objects.create(study=coded.study, kind="summaries", format="csv")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "write_export", boom)
    result = tasks.run_export.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert result["ok"] is False and job.status == "failed" and job.error == "RuntimeError: disk full"
    assert not list(Path(export_dir).rglob("*.part"))
    # a finished job is not run again by a duplicate delivery
    assert tasks.run_export.apply(args=[job.pk]).get() == {"job": job.pk, "ok": False, "error": "finished"}


def test_export_report_command(coded, tmp_path) -> None:
    out = io.StringIO()
    call_command("export_report", "--study", "smoking", "--kind", "codes", "--format", "csv",
                 "--out", str(tmp_path / "x" / "codes.csv"), stdout=out)
    assert f"{UtteranceCode.objects.count()} rows" in out.getvalue()
    call_command("export_report", "--study", "smoking", "--kind", "report", "--format", "pdf",
                 "--out", str(tmp_path / "r.pdf"), "--round", str(coded.coding_round.pk), stdout=io.StringIO())
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(CommandError, match="No study with the slug 'nope'"):
        call_command("export_report", "--study", "nope", "--kind", "codes", "--format", "csv", "--out", "x.csv")
    with pytest.raises(CommandError, match="'codes' can be exported as csv, xlsx, parquet or jsonl, not 'pdf'"):
        call_command("export_report", "--study", "smoking", "--kind", "codes", "--format", "pdf", "--out", "x.pdf")
    with pytest.raises(CommandError, match="has no coding round 999999"):
        call_command("export_report", "--study", "smoking", "--kind", "codes", "--format", "csv", "--out", "x.csv",
                     "--round", "999999")


@pytest.mark.worker
def test_export_job_on_a_real_worker(celery_worker_process, coordinator, study, coder, coder2,
                                     demo_dialogues_file) -> None:
    coded = coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file)
    job = actions.request_export(study, kind="codes", fmt="csv", requested_by=coordinator,
                                  coding_round=coded.coding_round)
    deadline = time.time() + 60
    while time.time() < deadline:
        job.refresh_from_db()
        if job.status in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job.status == "done", job.error
    assert job.rows == UtteranceCode.objects.count()
    assert Path(job.file_path).exists()


def test_compute_run_metrics_task_is_registered_by_name_and_stores_the_report(coded) -> None:
    from mi_platform.celery import app

    app.loader.import_default_modules()
    assert "evaluation.compute_run_metrics" in app.tasks  # inference sends it by this name
    coded.run.metric_report.delete()
    result = app.tasks["evaluation.compute_run_metrics"].apply(args=[coded.run.pk]).get()
    assert result["ok"] is True and result["n_rounds"] == coded.run.items.count()
    report = type(coded.run).objects.get(pk=coded.run.pk).metric_report
    from evaluation import metrics

    pairs, not_done = queries.run_pairs(coded.run)
    expected = metrics.score_rounds(pairs, "zh")
    assert not_done == 0
    assert report.pooled["bleu4"] == pytest.approx(expected.pooled.bleu4, abs=1e-9)
    assert report.pooled["rougeL"] == pytest.approx(expected.pooled.rougeL, abs=1e-9)
    assert report.language == "zh" and report.n_rounds == expected.n_rounds
    assert len(report.per_round) == expected.n_rounds and len(report.per_dialogue) == expected.n_dialogues
    assert report.extra["distinct_2"] == pytest.approx(expected.distinct_2)
    # a run that no longer exists is reported, not raised
    assert app.tasks["evaluation.compute_run_metrics"].apply(args=[999999]).get()["ok"] is False
