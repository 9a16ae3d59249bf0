"""Many new rows in one statement on PostgreSQL, the rows sent as one JSON document.

``bulk_create`` builds a model instance per row and, on PostgreSQL, sends text columns as arrays
that psycopg quotes value by value in Python; for the hundreds of rows a generation run creates
(items with their prompt histories, volleys, utterances) that was most of the platform's own time
per generated round (docs/benchmarks.md, "Platform cost per round"). Here the rows travel as one
JSON document that the server unpacks (``jsonb_to_recordset``): no instance, no per-value quoting.
Only for plain new rows (no conflicts to ignore, no signals: ``bulk_create`` sends none either).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, models


def can_insert_json_rows() -> bool:
    return connection.vendor == "postgresql"


def insert_json_rows(
    model: type[models.Model],
    names: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    returning: Sequence[str] = ("id",),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (values of the fields ``names``, JSON-serialisable) into ``model``'s table; return
    the ``returning`` fields of each new row, in no particular order.

    ``fixed`` gives a value shared by every row (e.g. ``{"run": run.pk}``); every other field takes
    its default. PostgreSQL only (:func:`can_insert_json_rows`).
    """
    qn = connection.ops.quote_name
    opts = model._meta
    fixed = dict(fixed or {})
    row_fields = [opts.get_field(name) for name in names]
    own = {field.name for field in row_fields}
    others = [field for field in opts.concrete_fields if not field.primary_key and field.name not in own]
    record = ", ".join(f"{qn(field.column)} {field.cast_db_type(connection)}" for field in row_fields)
    columns = ", ".join(qn(field.column) for field in [*others, *row_fields])
    select = ", ".join(
        [f"%s::{field.cast_db_type(connection)}" for field in others]
        + [f"r.{qn(field.column)}" for field in row_fields]
    )
    params = [
        field.get_db_prep_save(fixed[field.name] if field.name in fixed else field.get_default(), connection)
        for field in others
    ]
    keys = [field.column for field in row_fields]
    document = json.dumps([dict(zip(keys, row, strict=True)) for row in rows], ensure_ascii=False)
    back = ", ".join(qn(opts.get_field(name).column) for name in returning)
    sql = (
        f"INSERT INTO {qn(opts.db_table)} ({columns}) SELECT {select} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) RETURNING {back}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, document])
        return [tuple(row) for row in cursor.fetchall()]
