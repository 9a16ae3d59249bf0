"""The claim kernel: how a worker takes rows of queued work, gives them back, takes over a dead
worker's, and how work reaches Celery — by task name, once, after the transaction commits.

One protocol for every kind of queued work, so each kind differs only in its tables and its compute:
annotation's import batches (``annotation.models.ImportBatch``), generation items
(``inference.models.GenerationItem``), MI-style transformation items
(``inference.recipe.models.TransformationItem``) and evaluation's export jobs
(``evaluation.models.ExportJob``). It lives on the ground floor so that every app may use it;
``inference.claims`` re-exports it under the name inference's modules use.

- :class:`ClaimedWork` — the abstract model: ``claim_token``, ``claimed_at``, ``attempts``. The
  concrete model keeps its own ``status`` field and names the two values the kernel reads and writes
  (``OPEN_STATUS``, ``CLAIMED_STATUS``: ``pending``/``claimed`` for items, ``queued``/``running`` for a
  job row such as an import or an export), and the setting that says when its claims go stale
  (``STALE_SECONDS_SETTING``).
- :func:`claim` — one conditional UPDATE gives the open rows (open, claimed by a worker whose claim
  went stale, or already ours — a retried task keeps its token) a fresh token and returns them. Two
  deliveries of the same chunk cannot both win a row: the database locks it and re-checks the
  condition. A late writer whose stale claim was taken over finds its token gone and writes nothing
  (writers filter on :func:`held_by`).
- :func:`release` — give our unfinished rows back before a retry, so nobody waits for staleness.
- :func:`seconds_until_foreign_claims_go_stale` — when another live delivery holds the rows: retry then.
- :func:`send_task`/:func:`send_after_commit` — tasks are sent by their registered name (actions never
  import a tasks module: no ``actions ↔ tasks`` circle), after commit, so a worker never looks for a
  row that a rolled-back transaction never wrote. A registered task is applied through its own
  ``apply_async``, so Celery's eager mode (commands run "here", tests) runs it in process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

W = TypeVar("W", bound="ClaimedWork")


class ClaimedWork(models.Model):
    """A row that a worker claims before working on it (abstract).

    ``claim_token`` names the delivery that holds the row (empty: nobody), ``claimed_at`` when it
    took it (a claim older than :func:`claim_stale_seconds` may be taken over), ``attempts`` how
    many times it was claimed.
    """

    OPEN_STATUS: ClassVar[str] = "pending"
    CLAIMED_STATUS: ClassVar[str] = "claimed"
    # The setting (or, until settings name it, environment variable) holding the stale timeout.
    STALE_SECONDS_SETTING: ClassVar[str] = "INFERENCE_CLAIM_STALE_SECONDS"
    STALE_SECONDS_DEFAULT: ClassVar[int] = 600

    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


def claim_stale_seconds(model: type[ClaimedWork] = ClaimedWork) -> int:
    """Seconds after which another worker may take over a claim of ``model`` (a killed worker never
    releases it); the model's ``STALE_SECONDS_SETTING`` names the setting.

    Longer than any sane unit of work: a live worker whose claim is taken over only loses its write.
    """
    value = getattr(settings, model.STALE_SECONDS_SETTING, None)
    if value is None:
        # Until settings name it, the environment (e.g. a test worker's) may set it.
        value = os.environ.get(model.STALE_SECONDS_SETTING) or model.STALE_SECONDS_DEFAULT
    return int(value)


def new_claim_token() -> str:
    return uuid.uuid4().hex


def stale_cutoff(model: type[ClaimedWork] = ClaimedWork) -> datetime:
    return timezone.now() - timedelta(seconds=claim_stale_seconds(model))


def open_filter(model: type[ClaimedWork]) -> Q:
    """Rows a new claim may take: open, or claimed by a worker whose claim went stale."""
    return Q(status=model.OPEN_STATUS) | Q(status=model.CLAIMED_STATUS, claimed_at__lt=stale_cutoff(model))


def held_by(model: type[ClaimedWork], token: str) -> Q:
    """Rows still claimed with ``token``: the only rows a writer holding that token may write."""
    return Q(claim_token=token, status=model.CLAIMED_STATUS)


def claim(
    model: type[W], ids: Sequence[int], token: str, *, scope: Mapping[str, Any] | None = None
) -> list[W]:
    """Claim the open rows among ``ids`` (within ``scope``, e.g. ``{"run": run}``) with one conditional
    UPDATE; return the rows now ours, in no particular order.

    Rows already holding ``token`` are re-claimed too. On PostgreSQL and SQLite >= 3.35 the UPDATE
    returns the claimed rows (one round trip); elsewhere they are read back by token.
    """
    if not ids:
        return []
    now = timezone.now()
    scope = dict(scope or {})
    if _can_update_returning():
        return list(model.objects.raw(*_claim_sql(model, ids, token, now, scope)))
    model.objects.filter(id__in=ids, **scope).filter(open_filter(model) | held_by(model, token)).update(
        status=model.CLAIMED_STATUS, claim_token=token, claimed_at=now, attempts=F("attempts") + 1
    )
    return list(model.objects.filter(held_by(model, token), id__in=ids, **scope))


def _can_update_returning() -> bool:
    """UPDATE … RETURNING: PostgreSQL, SQLite >= 3.35 (the same databases that return ids on insert)."""
    return connection.features.can_return_columns_from_insert


def _claim_sql(
    model: type[ClaimedWork], ids: Sequence[int], token: str, now: datetime, scope: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """``claim``'s UPDATE … RETURNING: the same condition as ``open_filter`` or our token."""
    qn = connection.ops.quote_name
    opts = model._meta
    column = {field.name: qn(field.column) for field in opts.concrete_fields}
    when = opts.get_field("claimed_at")
    status, claimed_at, claim_token = column["status"], column["claimed_at"], column["claim_token"]
    scope_sql, scope_params = "", []
    for name, value in scope.items():
        field = opts.get_field(name)
        scope_sql += f"{qn(field.column)} = %s AND "
        scope_params.append(field.get_db_prep_value(getattr(value, "pk", value), connection))
    # PostgreSQL: the claim's commit does not wait for its WAL flush (``synchronous_commit`` off for this
    # statement's own transaction only). A claim is coordination, not a result: lost in a database crash,
    # the rows are simply open again and the retried delivery (its connection broke with the crash)
    # claims them anew; every later durable commit on the server (the results' write) flushes it anyway.
    # The flush was half of each claim's time (docs/benchmarks.md, "Platform cost per round").
    fast_commit = (
        "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS claim_commit "
        if connection.vendor == "postgresql" else ""
    )
    sql = (
        f"UPDATE {qn(opts.db_table)} SET {status} = %s, {claim_token} = %s, {claimed_at} = %s, "
        f"{column['attempts']} = {column['attempts']} + 1 {fast_commit}"
        f"WHERE {scope_sql}{column['id']} IN ({', '.join(['%s'] * len(ids))}) "
        f"AND ({status} = %s OR ({status} = %s AND ({claimed_at} < %s OR {claim_token} = %s))) "
        f"RETURNING {', '.join(column.values())}"
    )
    params = [
        model.CLAIMED_STATUS, token, when.get_db_prep_value(now, connection),
        *scope_params, *ids,
        model.OPEN_STATUS, model.CLAIMED_STATUS, when.get_db_prep_value(stale_cutoff(model), connection), token,
    ]  # fmt: skip
    return sql, params


def release(model: type[ClaimedWork], token: str) -> int:
    """Give our claimed, unfinished rows back (before a retry), so nobody waits for staleness."""
    return model.objects.filter(held_by(model, token)).update(status=model.OPEN_STATUS, claimed_at=None)


def seconds_until_foreign_claims_go_stale(model: type[ClaimedWork], ids: Sequence[int], token: str) -> int | None:
    """None when no other live claim holds any of ``ids``; else seconds until the first goes stale."""
    claimed_at: datetime | None = (
        model.objects.filter(id__in=ids, status=model.CLAIMED_STATUS)
        .exclude(claim_token=token)
        .order_by("claimed_at")
        .values_list("claimed_at", flat=True)
        .first()
    )
    if claimed_at is None:
        return None
    stale_at = claimed_at + timedelta(seconds=claim_stale_seconds(model))
    return max(1, int((stale_at - timezone.now()).total_seconds()) + 1)


# --- sending work to Celery, by name -------------------------------------------------------------


def chunked(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def send_task(name: str, args: Sequence[Any], *, queue: str | None = None):
    """Send task ``name`` now; returns its ``AsyncResult``.

    Resolved by name in the Celery app's registry (outside a worker the apps' tasks modules may not
    have been imported yet: the app's own discovery imports them); applied through the task's
    ``apply_async``, so eager mode runs it here.
    """
    from celery import current_app

    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    options = {"queue": queue} if queue else {}
    return current_app.signature(name, args=list(args), **options).apply_async()


def send_after_commit(name: str, arg_lists: Iterable[Sequence[Any]], *, queue: str | None = None) -> None:
    """Send task ``name`` once per argument list when the current transaction commits (one callback)."""
    batches = [list(args) for args in arg_lists]
    if not batches:
        return

    def send() -> None:
        for args in batches:
            send_task(name, args, queue=queue)

    transaction.on_commit(send)


__all__ = [
    "ClaimedWork",
    "chunked",
    "claim",
    "claim_stale_seconds",
    "held_by",
    "new_claim_token",
    "open_filter",
    "release",
    "seconds_until_foreign_claims_go_stale",
    "send_after_commit",
    "send_task",
    "stale_cutoff",
]
