"""Coordinator exports: long-format codes, per-coding summaries, aggregates, reliability, metrics.

Each export kind is one or more ``Table``s (header + rows); ``write_export`` writes them as CSV
(one file, or a zip of files for several tables), XLSX (one sheet per table) or — for the report —
HTML or PDF. CSV cells that a spreadsheet program would run as a formula are neutralised with a
leading quote (:func:`csv_cell`); XLSX writes inline strings, never formulas, so it keeps every text as
it is; the codes can also be written as JSONL, which keeps the exact texts for analysis
(``docs/exports.md``). Source and model columns are coordinator information: ``blind=True`` leaves them out
(for handing data to people who must stay blind). Numbers are written unrounded (full float
precision); the page and the report round for display only.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils.translation import gettext, gettext_noop

from annotation import miti
from annotation.errors import ActionError
from annotation.models import Assignment, CodingRound, Study, Utterance, UtteranceCode

from . import copy_codes
from .reliability import MIN_TARGETS
from .reliability_data import REFERENCE_BANDS
from .results import ALL_TABLE_KEYS, METRIC_COLUMNS, Results, build_results
from .summaries import VALUE_LABELS
from .xlsx import MAX_ROWS as XLSX_MAX_ROWS
from .xlsx import XlsxWriter

Progress = Callable[[float], None]

EXPORT_KINDS: dict[str, str] = {
    "codes": gettext_noop("Every code, long format (one row per utterance per coder)"),
    "summaries": gettext_noop("MITI summary per submitted coding"),
    "aggregates": gettext_noop("Per-source and per-coder aggregates"),
    "reliability": gettext_noop("Reliability tables (ICC, alpha, kappa, drift)"),
    "metrics": gettext_noop("Automatic metrics per run (BLEU-4, ROUGE)"),
    "all": gettext_noop("All tables (one workbook / a zip of CSV files)"),
    "report": gettext_noop("Printable MITI report"),
}
# Which formats each kind can be written in.
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "codes": ("csv", "xlsx", "parquet", "jsonl"),
    "summaries": ("csv", "xlsx", "parquet"),
    "aggregates": ("csv", "xlsx"),
    "reliability": ("csv", "xlsx"),
    "metrics": ("csv", "xlsx"),
    "all": ("xlsx", "csv"),
    "report": ("html", "pdf"),
}


def check_export(kind: str, fmt: str) -> None:
    """Raise ActionError unless ``kind`` can be exported as ``fmt``."""
    if kind not in EXPORT_FORMATS:
        raise ActionError(gettext("Unknown export kind '%(kind)s'; use one of: %(kinds)s.") % {
            # The web form is the only way an unknown kind arrives (the API and the command line offer
            # the keys as choices): name the kinds as the form does.
            "kind": kind, "kinds": "; ".join(gettext(label) for label in EXPORT_KINDS.values())})
    if fmt not in EXPORT_FORMATS[kind]:
        *first, last = EXPORT_FORMATS[kind]
        allowed = gettext("%(first)s or %(last)s") % {"first": ", ".join(first), "last": last} if first else last
        raise ActionError(gettext("'%(kind)s' can be exported as %(allowed)s, not '%(fmt)s'.") % {
            "kind": kind, "allowed": allowed, "fmt": fmt})


@dataclass
class Table:
    name: str  # sheet name / CSV file stem
    header: list[str]
    rows: Iterable[Sequence[Any]]


def _noop(_fraction: float) -> None:
    return None


TALLY_KEYS_HEADER: tuple[str, ...] = miti.CODE_KEYS


# --- codes, long format -------------------------------------------------------------------------------


def code_rows(
    study: Study,
    coding_round: CodingRound | None = None,
    *,
    blind: bool = False,
    progress: Progress = _noop,
) -> tuple[list[str], Iterator[list[Any]], int]:
    """One row per utterance per submitted assignment (coder or consensus), in 3 queries.

    Returns (header, rows, number of rows). Utterances a coder left without a code get an empty code.
    """
    # As in the results: reassigned work stays out unless a coordinator included it again.
    flt: dict[str, Any] = {"coding_round__study": study, "status": Assignment.Status.SUBMITTED, "in_results": True}
    if coding_round is not None:
        flt["coding_round"] = coding_round
    assignments = list(
        Assignment.objects.filter(**flt)
        .order_by("coding_round__created_at", "coding_round_id", "transcript_id", "kind", "coder__username")
        .values_list(
            "id", "coding_round__name", "kind", "coder_id", "coder__username", "transcript_id",
            "transcript__blind_code", "transcript__source__label", "transcript__source__kind",
            "transcript__source__generation_run_id", "submitted_at",
        )
    )
    transcript_ids = Assignment.objects.filter(**flt).values("transcript_id")
    utterances: dict[int, list[tuple[int, int, int, str]]] = {}
    for uid, tid, volley_index, index, text in (
        Utterance.objects.filter(volley__transcript_id__in=transcript_ids)
        .order_by("volley__transcript_id", "volley__index", "index")
        .values_list("id", "volley__transcript_id", "volley__index", "index", "text")
        .iterator(chunk_size=20000)
    ):
        utterances.setdefault(tid, []).append((uid, volley_index, index, text))
    codes = {
        (aid, uid): code
        for aid, uid, code in UtteranceCode.objects.filter(**{f"assignment__{k}": v for k, v in flt.items()})
        .values_list("assignment_id", "utterance_id", "code")
        .iterator(chunk_size=20000)
    }
    total = sum(len(utterances.get(a[5], ())) for a in assignments)
    header = ["round", "assignment_kind", "coder_id", "coder", "blind_code"]
    if not blind:
        header += ["source", "source_kind", "generation_run_id"]
    header += ["volley_index", "utterance_index", "utterance_text", "code", "submitted_at"]

    def rows() -> Iterator[list[Any]]:
        done = 0
        step = max(total // 50, 1)
        for (aid, round_name, kind, coder_id, coder, tid, blind_code, source, source_kind, run_id,
             submitted_at) in assignments:
            head = [round_name, kind, coder_id, coder, blind_code]
            if not blind:
                head += [source, source_kind, run_id]
            when = submitted_at.isoformat(timespec="seconds") if submitted_at else ""
            for uid, volley_index, index, text in utterances.get(tid, ()):
                yield [*head, volley_index + 1, index + 1, text, codes.get((aid, uid), ""), when]
                done += 1
                if done % step == 0:
                    progress(done / total)

    return header, rows(), total


# --- tables from Results --------------------------------------------------------------------------------


def summaries_table(results: Results, *, blind: bool = False) -> Table:
    """One row per submitted coding (and consensus): tallies, globals, summary scores and their status."""
    sources = results.summaries.sources
    header = ["round", "assignment_kind", "coder_id", "coder", "blind_code"]
    if not blind:
        header += ["source", "source_kind", "generation_run_id"]
    group_of = results.group_of
    if group_of is not None:
        header.append(f"group ({results.group_by})")
    header += ["submitted_at", "utterances_coded", *TALLY_KEYS_HEADER, *miti.GLOBAL_KEYS]
    for key in (*miti.SUMMARY_KEYS, *miti.RAW_COUNT_KEYS, *miti.DERIVED_KEYS):
        header.append(key)
        if key in miti.THRESHOLDS:
            header.append(f"{key}_status")
    rows = []
    for s in sorted(
        [*results.summaries.codings, *results.summaries.consensus],
        key=lambda s: (s.round_id, s.transcript_id, s.kind, s.coder),
    ):
        row: list[Any] = [s.round_name, s.kind, s.coder_id, s.coder, s.blind_code]
        if not blind:
            src = sources.get(s.source_id)
            row += [src.label if src else "", src.kind if src else "", src.generation_run_id if src else None]
        if group_of is not None:
            row.append(group_of(s))
        row += [s.submitted_at.isoformat(timespec="seconds") if s.submitted_at else "", s.n_coded]
        row += [s.counts[k] for k in miti.CODE_KEYS]
        row += [s.globals[k] if s.globals_rated else "not rated" for k in miti.GLOBAL_KEYS]
        for key in (*miti.SUMMARY_KEYS, *miti.RAW_COUNT_KEYS, *miti.DERIVED_KEYS):
            row.append(s.scores[key])
            if key in miti.THRESHOLDS:
                row.append(s.status(key))
        rows.append(row)
    return Table("summaries", header, rows)


STATS_HEADER = ["n", "mean", "sd", "n_fair", "n_good", "share_fair", "share_good"]


def _stats_cells(stats) -> list[Any]:
    return [stats.n, stats.mean, stats.sd, stats.n_fair, stats.n_good, stats.share_fair, stats.share_good]


def aggregate_tables(results: Results, *, blind: bool = False) -> list[Table]:
    """Per-source (final values) and per-coder statistics, long format: one row per group × score."""
    per_source: list[list[Any]] = []
    grouped = results.group_of is not None
    for row in results.sources:
        name = f"source {row.source.id}" if blind else row.source.label
        for key in ALL_TABLE_KEYS:
            per_source.append(
                [name, "" if blind else row.source.kind, *([row.group] if grouped else []), row.transcripts,
                 row.consensus, key, VALUE_LABELS[key], *_stats_cells(row.stats[key])]
            )
    per_coder: list[list[Any]] = []
    for coder, n, stats in results.coders:
        for key in ALL_TABLE_KEYS:
            per_coder.append([coder, n, key, VALUE_LABELS[key], *_stats_cells(stats[key])])
    note = [[results.aggregates.note]]
    return [
        Table("per_source", ["source", "source_kind", *([f"group ({results.group_by})"] if grouped else []),
                             "transcripts", "consensus", "score", "label", *STATS_HEADER], per_source),
        Table("per_coder", ["coder", "codings", "score", "label", *STATS_HEADER], per_coder),
        Table("aggregation_note", ["note"], note),
    ]


def _status(result) -> str:
    # The machine-readable status ("ok", "undefined", "not_enough_data", "not_applicable",
    # "not_estimable"): "n/a" would be read back as a missing value by pandas and R.
    return result.status


def _reason(result) -> str:
    # Why a value is empty; "" when there is one (docs/metrics.md, "When a statistic is not estimable").
    return "" if result.status == "ok" else result.reason


def reliability_tables(results: Results) -> list[Table]:
    """ICC and interval alpha per score; utterance-level alpha, Fleiss, Cohen per pair, per code; drift."""
    rel = results.reliability
    scores = []
    for s in rel.scores:
        # Only the Estimates' values: a statistic that is not estimable is an empty cell with its reason.
        i, a = s.icc, s.alpha
        one, avg = i.single, i.average
        scores.append([
            s.group, s.key, s.label, i.n, i.k, i.n_dropped, one.value,
            one.ci95[0] if one.ci95 else None, one.ci95[1] if one.ci95 else None,
            avg.value, avg.ci95[0] if avg.ci95 else None, avg.ci95[1] if avg.ci95 else None,
            one.band, _status(i), a.alpha, a.n_units, _status(a),
            one.reason, one.ci_reason, avg.reason, avg.ci_reason, _reason(a),
        ])
    u = rel.utterances
    utterance = [
        ["Krippendorff alpha (nominal, NONE a category)", "all codes", u.alpha.alpha, u.alpha.n_units,
         _status(u.alpha), "", _reason(u.alpha)],
        ["Fleiss kappa", "all codes", u.fleiss.kappa, u.fleiss.n_units, _status(u.fleiss), u.fleiss.band or "",
         _reason(u.fleiss)],
    ]
    for p in u.pairs:
        utterance.append([f"Cohen kappa {p.coder_a} vs {p.coder_b}", "all codes", p.kappa.kappa, p.kappa.n_units,
                          _status(p.kappa), p.kappa.band or "", _reason(p.kappa)])
    for c in u.per_code:
        utterance.append([f"Krippendorff alpha (nominal, {c.code} vs other)", c.code, c.alpha.alpha,
                          c.alpha.n_units, _status(c.alpha), "", _reason(c.alpha)])
        utterance.append([f"Fleiss kappa ({c.code} vs other)", c.code, c.fleiss.kappa, c.fleiss.n_units,
                          _status(c.fleiss), c.fleiss.band or "", _reason(c.fleiss)])
    drift = [[d.coder, d.key, d.n, d.mean_difference, d.first_half, d.second_half] for d in rel.drift]
    info = [
        ["double-coded transcripts", rel.n_transcripts],
        ["coders", ", ".join(rel.coders.values())],
        ["ICC raters", rel.raters],
        ["k (raters per transcript in ICC)", rel.k],
        ["minimum double-coded units per statistic", MIN_TARGETS],
        *[["note", n] for n in rel.notes],
        *[[f"reference: {name}", f"{band} ({src})"] for name, band, src in REFERENCE_BANDS],
    ]
    return [
        Table("reliability_scores",
              ["group", "score", "label", "n_transcripts", "k", "n_dropped", "icc2_1", "icc2_1_ci_low",
               "icc2_1_ci_high", "icc2_k", "icc2_k_ci_low", "icc2_k_ci_high", "band_icc2_1", "icc_status",
               "alpha_interval", "alpha_units", "alpha_status", "icc2_1_reason", "icc2_1_ci_reason",
               "icc2_k_reason", "icc2_k_ci_reason", "alpha_reason"], scores),
        Table("reliability_utterances", ["statistic", "codes", "value", "units", "status", "band", "reason"],
              utterance),
        Table("reliability_drift",
              ["coder", "score", "n", "mean_difference", "first_half_mean_difference",
               "second_half_mean_difference"], drift),
        Table("reliability_info", ["item", "value"], info),
    ]


def metrics_table(results: Results, *, blind: bool = False) -> Table:
    header = ["run_id", "model", "base_model", "finetuned", "split", "status", "language", "tokenizer",
              "n_dialogues", "n_rounds", *[key for key, _ in METRIC_COLUMNS]]
    rows = []
    for m in results.metrics:
        rows.append([m.run_id, "" if blind else m.model, "" if blind else m.base_model, m.finetuned, m.split,
                     m.status, m.language, m.tokenizer, m.n_dialogues, m.n_rounds,
                     *[m.values.get(key) for key, _ in METRIC_COLUMNS]])
    return Table("metrics", header, rows)


# --- writers ------------------------------------------------------------------------------------------


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV
# injection"): ``=cmd|' /C calc'!A0`` in an utterance would run when a coordinator opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string starting like a formula gets a leading quote.

    Numbers are written as numbers (a negative float stays a number); only text is prefixed, as OWASP
    recommends. The JSONL export keeps the exact text.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(row: Sequence[Any]) -> list[Any]:
    return [csv_cell(value) for value in row]


def _csv_bytes(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_csv_row(table.header))
    writer.writerows(_csv_row(row) for row in table.rows)
    # utf-8-sig: Excel opens a UTF-8 CSV with Chinese text correctly only with the BOM.
    return buffer.getvalue().encode("utf-8-sig")


# Excel's sheet holds 1,048,576 rows, one of them the header: longer tables continue on "name (2)", ...
XLSX_SHEET_ROWS = XLSX_MAX_ROWS - 1
PARQUET_BATCH_ROWS = 100_000


def _xlsx_sheets(book: XlsxWriter, table: Table, sheet_rows: int = XLSX_SHEET_ROWS) -> int:
    rows = iter(table.rows)
    written, part = 0, 1
    while True:
        chunk = itertools.islice(rows, sheet_rows)
        first = next(chunk, None)
        if first is None and part > 1:
            return written
        name = table.name if part == 1 else f"{table.name} ({part})"
        body = itertools.chain([first], chunk) if first is not None else iter(())
        n = book.sheet(name, table.header, body)
        written += n
        if n < sheet_rows:
            return written
        part += 1


def _write_parquet(table: Table, out: Path) -> int:
    """One Parquet file in row groups of ``PARQUET_BATCH_ROWS``; column types from the first batch
    (a column with no value there is a string column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = iter(table.rows)
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    written = 0
    try:
        while True:
            batch = list(itertools.islice(rows, PARQUET_BATCH_ROWS))
            if not batch and writer is not None:
                break
            columns = list(zip(*batch, strict=True)) if batch else [() for _ in table.header]
            if schema is None:
                fields = []
                for name, values in zip(table.header, columns, strict=True):
                    kind = pa.array(values).type
                    fields.append(pa.field(name, pa.string() if pa.types.is_null(kind) else kind))
                schema = pa.schema(fields)
                writer = pq.ParquetWriter(out, schema)
            arrays = [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)]
            assert writer is not None
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(batch)
            if not batch:
                break
    finally:
        if writer is not None:
            writer.close()
    return written
def _jsonl_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _write_tables(tables: list[Table], fmt: str, out: Path) -> int:
    rows = 0
    if fmt == "jsonl":
        # One JSON object per row, keyed by the header: the exact texts (no quote prefix), UTF-8.
        (table,) = tables
        with out.open("w", encoding="utf-8", newline="\n") as handle:
            for row in table.rows:
                record = {key: _jsonl_value(value) for key, value in zip(table.header, row, strict=True)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                rows += 1
        return rows
    if fmt == "xlsx":
        with XlsxWriter(out) as book:
            for table in tables:
                rows += _xlsx_sheets(book, table, XLSX_SHEET_ROWS)
        return rows
    if fmt == "parquet":
        if len(tables) != 1:
            raise ActionError("Parquet exports hold one table.")
        return _write_parquet(tables[0], out)
    if len(tables) == 1:
        table = tables[0]
        with out.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow(_csv_row(table.header))
            for row in table.rows:
                writer.writerow(_csv_row(row))
                rows += 1
        return rows
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in tables:
            materialised = list(table.rows)
            rows += len(materialised)
            archive.writestr(f"{table.name}.csv", _csv_bytes(Table(table.name, table.header, materialised)))
    return rows


def export_filename(study: Study, kind: str, fmt: str, coding_round: CodingRound | None = None) -> str:
    """A file name for downloads: study slug, kind, round; ``.zip`` for several CSV tables."""
    part = f"-round{coding_round.pk}" if coding_round is not None else ""
    ext = "zip" if fmt == "csv" and kind in ("aggregates", "reliability", "all") else fmt
    return f"{study.slug}-{kind}{part}.{ext}"


def write_export(
    study: Study,
    kind: str,
    fmt: str,
    out: str | Path,
    *,
    coding_round: CodingRound | None = None,
    blind: bool = False,
    progress: Progress = _noop,
    results: Results | None = None,
    group_by: str = "source",
) -> int:
    """Write export ``kind`` as ``fmt`` to ``out``; returns the number of data rows (1 for a report).
    ``group_by`` (``evaluation.grouping``) splits the per-source tables and adds a ``group`` column to
    the summaries."""
    check_export(kind, fmt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "codes":
        if fmt in ("csv", "parquet") and connection.vendor == "postgresql":
            return copy_codes.write(study, coding_round, fmt, out, blind=blind, progress=progress)
        header, rows, _total = code_rows(study, coding_round, blind=blind, progress=progress)
        return _write_tables([Table("codes", header, rows)], fmt, out)
    results = results or build_results(study, coding_round, group_by=group_by)
    progress(0.5)
    if kind == "report":
        from . import report

        if fmt == "html":
            out.write_text(report.render_html(results), encoding="utf-8")
        else:
            out.write_bytes(report.render_pdf(results))
        return 1
    tables: list[Table] = []
    if kind in ("summaries", "all"):
        tables.append(summaries_table(results, blind=blind))
    if kind in ("aggregates", "all"):
        tables += aggregate_tables(results, blind=blind)
    if kind in ("reliability", "all"):
        tables += reliability_tables(results)
    if kind in ("metrics", "all"):
        tables.append(metrics_table(results, blind=blind))
    return _write_tables(tables, fmt, out)
