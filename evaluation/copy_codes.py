"""The long-format code export on PostgreSQL: one ``COPY (SELECT …) TO STDOUT`` instead of Python rows.

Same rows, columns and order as ``exports.code_rows`` (which SQLite and the XLSX writer use): one row
per utterance per submitted assignment, an uncoded utterance with an empty code. The database joins
and formats the 1,200,000 rows of a 10,000-transcript study itself (docs/benchmarks.md, "Results that
keep up"); Parquet is written from that CSV by pyarrow's C++ reader, in row groups, with integer
columns typed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from django.db import connection

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


def _header(blind: bool) -> list[str]:
    header = ["round", "assignment_kind", "coder_id", "coder", "blind_code"]
    if not blind:
        header += ["source", "source_kind", "generation_run_id"]
    return header + ["volley_index", "utterance_index", "utterance_text", "code", "submitted_at"]


def _select(study: Study, coding_round: CodingRound | None, blind: bool, *, ordered: bool = True) -> str:
    user_table = Assignment._meta.get_field("coder").related_model._meta.db_table
    qn = connection.ops.quote_name
    source_columns = "" if blind else "s.label, s.kind, s.generation_run_id, "
    # ids are integers from our own rows: formatted in, since COPY takes no bind parameters
    scope = f"r.study_id = {int(study.pk)}"
    if coding_round is not None:
        scope += f" AND a.coding_round_id = {int(coding_round.pk)}"
    return (
        "SELECT r.name, a.kind, a.coder_id, u.username, t.blind_code, "
        f"{source_columns}v.{qn('index')} + 1, ut.{qn('index')} + 1, ut.text, COALESCE(c.code, ''), "
        "to_char(a.submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') "
        f"FROM {Assignment._meta.db_table} a "
        f"JOIN {CodingRound._meta.db_table} r ON r.id = a.coding_round_id "
        f"JOIN {qn(user_table)} u ON u.id = a.coder_id "
        f"JOIN {Transcript._meta.db_table} t ON t.id = a.transcript_id "
        f"JOIN {TranscriptSource._meta.db_table} s ON s.id = t.source_id "
        f"JOIN {Volley._meta.db_table} v ON v.transcript_id = t.id "
        f"JOIN {Utterance._meta.db_table} ut ON ut.volley_id = v.id "
        f"LEFT JOIN {UtteranceCode._meta.db_table} c ON c.assignment_id = a.id AND c.utterance_id = ut.id "
        f"WHERE {scope} AND a.status = 'submitted'"
        + (f" ORDER BY r.created_at, r.id, a.transcript_id, a.kind, u.username, v.{qn('index')}, ut.{qn('index')}"
           if ordered else "")
    )


def _copy_csv(sql: str, header: list[str], handle) -> None:
    """Stream the query as CSV (header first) into ``handle``."""
    handle.write((",".join(header) + "\n").encode())
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        for block in copy:
            handle.write(block)


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
    sql = _select(study, coding_round, blind)
    if fmt == "csv":
        with out.open("wb") as handle:
            handle.write("\ufeff".encode())
            # A text may hold a newline (quoted by COPY): count rows by the query, not by lines.
            _copy_csv(sql, header, handle)
        rows = _count(study, coding_round)
        progress(1.0)
        return rows
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with tempfile.NamedTemporaryFile(suffix=".csv", dir=out.parent) as tmp:
        _copy_csv(sql, header, tmp)
        tmp.flush()
        progress(0.5)
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
    sql = _select(study, coding_round, blind=True, ordered=False)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) q")
        return int(cursor.fetchone()[0])
