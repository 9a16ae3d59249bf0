"""The long-format code export on PostgreSQL: ``COPY (SELECT …) TO STDOUT`` instead of Python rows.

Same rows, columns and order as ``exports.code_rows`` (which SQLite and the XLSX writer use): one row
per utterance per submitted assignment, an uncoded utterance with an empty code. The database joins
and formats the 1,200,000 rows of a 10,000-transcript study itself, one batch of assignments per
COPY (see docs/benchmarks.md, "Results that keep up"); Parquet is written from that CSV by
pyarrow's C++ reader, in row groups, with integer columns typed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from django.db import connection, transaction

from annotation.models import (
    Assignment,
    CodingRound,
    Study,
    Transcript,
    TranscriptSource,
    Utterance,
    UtteranceCode,
    Volley,
)

INTEGER_COLUMNS = ("coder_id", "generation_run_id", "volley_index", "utterance_index")
BATCH_ASSIGNMENTS = 500


def _header(blind: bool) -> list[str]:
    header = ["round", "assignment_kind", "coder_id", "coder", "blind_code"]
    if not blind:
        header += ["source", "source_kind", "generation_run_id"]
    return header + ["volley_index", "utterance_index", "utterance_text", "code", "submitted_at"]


# Text that starts like a spreadsheet formula (= + - @ tab CR) gets a leading quote in CSV, as
# ``exports.csv_cell`` does for the Python writers (OWASP CSV injection); Parquet keeps the exact text.
_FORMULA_CASE = "CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {0} ELSE {0} END"


def _text(expr: str, neutralise: bool) -> str:
    return _FORMULA_CASE.format(expr) if neutralise else expr


def _select(study: Study, coding_round: CodingRound | None, blind: bool, ids: list[int], *, neutralise: bool) -> str:
    user_table = Assignment._meta.get_field("coder").related_model._meta.db_table
    qn = connection.ops.quote_name

    def t(expr: str) -> str:
        return _text(expr, neutralise)

    source_columns = "" if blind else f"{t('s.label')}, s.kind, s.generation_run_id, "
    # ids are integers from our own rows: formatted in, since COPY takes no bind parameters
    scope = f"r.study_id = {int(study.pk)}"
    if coding_round is not None:
        scope += f" AND a.coding_round_id = {int(coding_round.pk)}"
    return (
        f"SELECT {t('r.name')}, a.kind, a.coder_id, {t('u.username')}, {t('t.blind_code')}, "
        f"{source_columns}v.{qn('index')} + 1, ut.{qn('index')} + 1, {t('ut.text')}, COALESCE(c.code, ''), "
        "to_char(a.submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') "
        f"FROM {Assignment._meta.db_table} a "
        f"JOIN {CodingRound._meta.db_table} r ON r.id = a.coding_round_id "
        f"JOIN {qn(user_table)} u ON u.id = a.coder_id "
        f"JOIN {Transcript._meta.db_table} t ON t.id = a.transcript_id "
        f"JOIN {TranscriptSource._meta.db_table} s ON s.id = t.source_id "
        f"JOIN {Volley._meta.db_table} v ON v.transcript_id = t.id "
        f"JOIN {Utterance._meta.db_table} ut ON ut.volley_id = v.id "
        f"LEFT JOIN {UtteranceCode._meta.db_table} c ON c.assignment_id = a.id AND c.utterance_id = ut.id "
        f"WHERE {scope} AND a.status = 'submitted' AND a.in_results AND a.id IN ({', '.join(str(int(i)) for i in ids)}) "
        f"ORDER BY r.created_at, r.id, a.transcript_id, a.kind, u.username, v.{qn('index')}, ut.{qn('index')}"
    )


def _assignment_batches(study: Study, coding_round: CodingRound | None) -> list[list[int]]:
    """The submitted assignments in the export's order, in batches: each batch's COPY sorts only its
    own rows (~20,000), where one ORDER BY over every row would sort 1.2 M rows with their texts."""
    # Same scope as ``exports.code_rows``: a reassigned coder's old work stays out unless included.
    flt: dict[str, object] = {"coding_round__study": study, "status": Assignment.Status.SUBMITTED, "in_results": True}
    if coding_round is not None:
        flt["coding_round"] = coding_round
    ids = list(
        Assignment.objects.filter(**flt)
        .order_by("coding_round__created_at", "coding_round_id", "transcript_id", "kind", "coder__username")
        .values_list("id", flat=True)
    )
    return [ids[i:i + BATCH_ASSIGNMENTS] for i in range(0, len(ids), BATCH_ASSIGNMENTS)]


def _copy_csv(
    study: Study, coding_round: CodingRound | None, blind: bool, handle, progress: Callable[[float], None],
    *, neutralise: bool,
) -> None:
    """Stream the rows as CSV (header first) into ``handle``, batch by batch in the export's order."""
    handle.write((",".join(_header(blind)) + "\n").encode())
    batches = _assignment_batches(study, coding_round)
    with transaction.atomic(), connection.cursor() as cursor:
        # One batch's rows with their texts (~10 MB) sort in memory rather than in temporary files.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for done, ids in enumerate(batches, 1):
            sql = _select(study, coding_round, blind, ids, neutralise=neutralise)
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    handle.write(block)
            progress(0.9 * done / len(batches))


def write(
    study: Study,
    coding_round: CodingRound | None,
    fmt: str,
    out: Path,
    *,
    blind: bool = False,
    progress: Callable[[float], None] = lambda _f: None,
) -> int:
    """Write the code export as CSV (UTF-8 with BOM, for Excel) or Parquet; returns the number of rows."""
    header = _header(blind)
    if fmt == "csv":
        with out.open("wb") as handle:
            handle.write("\ufeff".encode())
            _copy_csv(study, coding_round, blind, handle, progress, neutralise=True)
        # A text may hold a newline (quoted by COPY): count rows by a query, not by lines.
        rows = _count(study, coding_round)
        progress(1.0)
        return rows
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with tempfile.NamedTemporaryFile(suffix=".csv", dir=out.parent) as tmp:
        _copy_csv(study, coding_round, blind, tmp, lambda f: progress(f / 2), neutralise=False)
        tmp.flush()
        types = {name: pa.int64() for name in INTEGER_COLUMNS if name in header}
        types |= {name: pa.string() for name in header if name not in types}
        reader = pacsv.open_csv(
            tmp.name,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
        rows = 0
        with pq.ParquetWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    progress(1.0)
    return rows


def _count(study: Study, coding_round: CodingRound | None) -> int:
    """Rows of the export: utterances of each submitted assignment's transcript (no text, no sort)."""
    scope = f"r.study_id = {int(study.pk)}"
    if coding_round is not None:
        scope += f" AND a.coding_round_id = {int(coding_round.pk)}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Assignment._meta.db_table} a "
            f"JOIN {CodingRound._meta.db_table} r ON r.id = a.coding_round_id "
            f"JOIN {Volley._meta.db_table} v ON v.transcript_id = a.transcript_id "
            f"JOIN {Utterance._meta.db_table} ut ON ut.volley_id = v.id "
            f"WHERE {scope} AND a.status = 'submitted' AND a.in_results"
        )
        return int(cursor.fetchone()[0])
