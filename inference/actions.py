"""Every state change of generation: register a model, start/cancel/resume a run, claim and store chunks.

Atomic, with task enqueues only after commit and by task name (``inference.claims.send_after_commit``).
The claim/store pair is what makes chunks safe to re-send and workers safe to kill: a chunk is
claimed with the claim kernel's one conditional UPDATE (``inference.claims.claim``) that gives the
claimed rows a fresh token, and results are written in one transaction only to rows that still
hold that token and are not done — so a duplicate delivery claims nothing, a killed worker's claim
goes stale and is taken over, and a late writer whose claim was taken over writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from annotation import bulk
from annotation.actions import create_generated_source, dialogue_rounds
from annotation.errors import ActionError
from annotation.models import Dialogue, Study, Turn

from . import claims, prompts, registry
from .backends import get_backend
from .models import GenerationItem, GenerationRun, RegisteredModel, WorkerPreflight

log = logging.getLogger(__name__)

Item = GenerationItem
Run = GenerationRun
FINISHED = (Run.Status.DONE, Run.Status.FAILED, Run.Status.CANCELLED)
EVALUATION_TASK = "evaluation.compute_run_metrics"
# Chunk tasks by queue, sent by name (``inference.tasks`` registers them).
CHUNK_TASKS = {"cpu": "inference.tasks.run_chunk", "gpu": "inference.tasks.run_chunk_gpu"}

__all__ = [
    "ActionError",
    "ItemOutcome",
    "cancel_run",
    "claim_items",
    "finish_run_if_complete",
    "register_model",
    "release_claims",
    "resume_run",
    "retry_item",
    "start_run",
    "store_results",
    "test_model",
]


# --- the registry ------------------------------------------------------------------------------

_MODEL_FIELDS = {f.name for f in RegisteredModel._meta.get_fields() if f.concrete and not f.auto_created}


@transaction.atomic
def register_model(*, created_by=None, **fields: Any) -> RegisteredModel:
    """Register a model after checking it (missing paths, missing chat template, bad parameters).

    Raises :class:`ActionError` listing every fatal problem; nothing is created then. Warnings
    (e.g. vLLM not installed in the web process) do not stop registration.
    """
    unknown = sorted(set(fields) - _MODEL_FIELDS)
    if unknown:
        raise ActionError(f"Unknown model field(s): {', '.join(unknown)}.")
    model = RegisteredModel(created_by=created_by, **fields)
    for key in ("base_model", "adapter_path", "server_url", "name"):
        setattr(model, key, (getattr(model, key) or "").strip())
    if model.name and RegisteredModel.objects.filter(name=model.name).exists():
        raise ActionError(f"A model named '{model.name}' is already registered.")
    # The registry's checks first: they name the field and the rule (full_clean would only name
    # a violated constraint).
    fatal = registry.fatal_messages(registry.problems_for(model, deep=False))
    if fatal:
        raise ActionError(f"Model '{model.name}' cannot be registered: " + "; ".join(fatal) + ".")
    try:
        model.full_clean(exclude=["created_by"])
    except ValidationError as error:
        raise ActionError(f"Model '{model.name}' cannot be registered: {_validation_text(error)}") from None
    model.save()
    return model


def _validation_text(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)


def test_model(model: RegisteredModel) -> list[str]:
    """ "Test this model": the deep check, then one tiny generation. Returns problems (empty: ready).

    Runs here, in this process: on the web machine that only suits small local models and HTTP
    servers, so the page sends it to a worker on the model's queue (``inference.tasks.test_model``).
    """
    problems = registry.fatal_messages(registry.problems_for(model, deep=True))
    if problems:
        return problems
    sample = [{"role": "user", "content": "你好。Hello."}]
    if model.system_prompt.strip():
        sample.insert(0, {"role": "system", "content": model.system_prompt.strip()})
    try:
        backend = get_backend(registry.spec_for(model, max_new_tokens=8))
        result = backend.generate([sample])[0]
    except Exception as error:  # noqa: BLE001 - whatever stops generation is the answer to "test"
        return [f"a test generation failed: {type(error).__name__}: {error}"]
    if result.error:
        return [f"a test generation failed: {result.error}"]
    if result.completion_tokens == 0:
        return ["a test generation returned no tokens (check the chat template's end-of-turn token)"]
    return []


# --- runs ----------------------------------------------------------------------------------------


def _dialogue_items(
    dialogue: Dialogue, pairs: Sequence[tuple[str, str]], system_prompt: str
) -> list[tuple[int, list[dict[str, str]], str]]:
    """(round index, prompt messages, reference reply) per round of ``dialogue``."""
    rounds = prompts.build_rounds(pairs)
    # The transcript built when the run finishes counts rounds with annotation's rule; a dialogue
    # where the two disagree (e.g. a blank turn) would fail only at the end, so refuse it now.
    expected = len(dialogue_rounds(pairs))
    if len(rounds) != expected:
        raise ActionError(
            f"Dialogue {dialogue.external_id}: {len(rounds)} rounds for generation but {expected} for its "
            "transcript (blank turns?); fix the dialogue before generating."
        )
    return [
        (r.index, prompts.build_messages(rounds, r.index, system_prompt=system_prompt or None), r.counselor)
        for r in rounds
    ]


def _create_items(
    run: Run, dialogues: Iterable[Dialogue], system_prompt: str, *, new_run: bool = False
) -> list[int]:
    """One item per round, idempotently; return the run's item ids in round order.

    The unique (run, dialogue, round) constraint drops repeats. For a run created in this same
    transaction (``new_run``) there are none, so the insert returns the new ids (PostgreSQL, SQLite
    >= 3.35) instead of a second query reading them back; on PostgreSQL it is one statement over a
    JSON document of the rounds (``annotation.bulk``: a run's items, each with its whole prompt
    history, were most of a run's platform time through ``bulk_create``).
    """
    turns_by_dialogue: dict[int, list[tuple[str, str]]] = {}
    dialogues = list(dialogues)
    for dialogue_id, speaker, text in (
        Turn.objects.filter(dialogue__in=dialogues)
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "speaker", "text")
    ):
        turns_by_dialogue.setdefault(dialogue_id, []).append((speaker, text))
    rounds = [
        (dialogue.pk, index, messages, reference)
        for dialogue in dialogues
        for index, messages, reference in _dialogue_items(
            dialogue, turns_by_dialogue.get(dialogue.pk, []), system_prompt
        )
    ]
    if new_run and rounds and bulk.can_insert_json_rows():
        names = ("dialogue", "round_index", "messages", "reference")
        inserted = bulk.insert_json_rows(
            Item, names, rounds, fixed={"run": run.pk}, returning=("id", *names[:2])
        )
        return [pk for pk, _, _ in sorted(inserted, key=lambda row: (row[1], row[2]))]
    rows = [
        Item(run=run, dialogue_id=dialogue_id, round_index=index, messages=messages, reference=reference)
        for dialogue_id, index, messages, reference in rounds
    ]
    created = Item.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=not new_run)
    if new_run and all(item.pk is not None for item in created):
        return [item.pk for item in sorted(created, key=lambda item: (item.dialogue_id, item.round_index))]
    return list(run.items.order_by("dialogue_id", "round_index").values_list("id", flat=True))


def start_run(
    study: Study,
    model: RegisteredModel,
    *,
    split: str = "test",
    chunk_size: int = 8,
    created_by=None,
) -> Run:
    """Start generating the counselor replies of every round of ``study``'s ``split`` with ``model``.

    Refuses (``ActionError``, nothing created) an unknown split, a split with no dialogues or no
    rounds, a model with fatal problems, a chunk size below 1. The run keeps a snapshot of the
    model's parameters; its chunks are enqueued on the model's queue after commit.
    """
    if split not in Dialogue.Split.values:
        raise ActionError(f"Unknown split '{split}'; use one of {', '.join(Dialogue.Split.values)}.")
    if chunk_size < 1:
        raise ActionError(f"chunk_size must be at least 1, got {chunk_size}.")
    fatal = registry.fatal_messages(registry.problems_for(model, deep=False))
    if fatal:
        raise ActionError(f"Model '{model.name}' cannot generate: " + "; ".join(fatal) + ".")
    dialogues = list(Dialogue.objects.filter(study=study, split=split).order_by("id"))
    if not dialogues:
        raise ActionError(
            f"Study '{study.slug}' has no dialogues in the '{split}' split; make a split first (Splits page)."
        )
    with transaction.atomic():
        run = Run.objects.create(
            study=study,
            model=model,
            split=split,
            params=registry.params_snapshot(model),
            chunk_size=chunk_size,
            queue=registry.queue_for(model.backend),
            created_by=created_by,
        )
        ids = _create_items(run, dialogues, model.system_prompt, new_run=True)
        if not ids:
            # Raising inside the atomic block rolls the run back: no half-created run survives.
            raise ActionError(
                f"The '{split}' split of study '{study.slug}' has no complete rounds to generate."
            )
        _enqueue_after_commit(run, ids)
    return run


def _enqueue_after_commit(run: Run, item_ids: Sequence[int]) -> None:
    """One chunk task per ``run.chunk_size`` items on the run's queue, sent by name after commit."""
    name = CHUNK_TASKS["gpu" if run.queue == "gpu" else "cpu"]
    claims.send_after_commit(
        name, ([run.pk, chunk] for chunk in claims.chunked(item_ids, run.chunk_size)), queue=run.queue
    )


def cancel_run(run: Run) -> bool:
    """Stop a queued or running run: chunks not yet started exit without work. False if finished."""
    changed = Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).update(
        status=Run.Status.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return changed == 1


def resume_run(run: Run, retry_failed: bool = False) -> int:
    """Re-enqueue a run's pending (and stale-claimed) items; with ``retry_failed`` its failed ones too.

    A cancelled or failed run goes back to queued. Items claimed by a live worker are left alone.
    Returns the number of items enqueued. A finished run with nothing left is finished again.
    """
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status == Run.Status.DONE:
            return 0
        if retry_failed:
            Item.objects.filter(run=run, status=Item.Status.FAILED).update(
                status=Item.Status.PENDING, error="", claim_token=""
            )
        ids = list(
            Item.objects.filter(run=run)
            .filter(claims.open_filter(Item))
            .order_by("dialogue_id", "round_index")
            .values_list("id", flat=True)
        )
        in_flight = Item.objects.filter(run=run, status=Item.Status.CLAIMED).exclude(id__in=ids).exists()
        if ids or in_flight:
            # started_at restarts so the rate shown is this session's, not diluted by the pause.
            run.status, run.finished_at, run.error, run.started_at = Run.Status.QUEUED, None, "", None
            run.save(update_fields=["status", "finished_at", "error", "started_at"])
            _enqueue_after_commit(run, ids)
    if not ids and not in_flight:
        finish_run_if_complete(run, force=True)
    return len(ids)


def retry_item(item: Item) -> None:
    """Send one failed item again (its error is cleared; its run reopens if it had finished)."""
    with transaction.atomic():
        changed = Item.objects.filter(pk=item.pk, status=Item.Status.FAILED).update(
            status=Item.Status.PENDING, error="", claim_token=""
        )
        if not changed:
            raise ActionError(
                gettext("Item %(item)s is not failed; only failed items can be retried.") % {"item": item.pk}
            )
        run = Run.objects.select_for_update().get(pk=item.run_id)
        if run.status in FINISHED:
            run.status, run.finished_at, run.error, run.started_at = Run.Status.QUEUED, None, "", None
            run.save(update_fields=["status", "finished_at", "error", "started_at"])
        _enqueue_after_commit(run, [item.pk])


# --- chunks: claim, store, finish --------------------------------------------------------------


def claim_items(run: Run, item_ids: Sequence[int], token: str) -> list[Item]:
    """Claim the open items among ``item_ids`` (``inference.claims.claim``); return those now ours, in
    round order. Items already holding ``token`` (a retried task keeps its token) are re-claimed too.
    Marks the run running on its first claim.
    """
    if not item_ids:
        return []
    now = timezone.now()
    if run.status != Run.Status.QUEUED:
        # The common case: the claim is one statement, atomic on its own (no BEGIN/COMMIT round trips).
        mine = claims.claim(Item, item_ids, token, scope={"run": run})
        return sorted(mine, key=lambda item: (item.dialogue_id, item.round_index))
    with transaction.atomic():  # one commit for the claim and the run's first "running"
        mine = claims.claim(Item, item_ids, token, scope={"run": run})
        # The run as loaded by the caller says whether this can be the first claim since (re)start;
        # the conditional update keeps it right when two chunks start at once.
        if mine and run.status == Run.Status.QUEUED:
            Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
                status=Run.Status.RUNNING, started_at=Coalesce("started_at", Value(now))
            )
    return sorted(mine, key=lambda item: (item.dialogue_id, item.round_index))


def release_claims(token: str) -> int:
    """Give our claimed, unfinished items back (before a retry), so nobody waits for staleness."""
    return claims.release(Item, token)


@dataclass
class ItemOutcome:
    """What a chunk produced for one item: a response, or an error (then the item fails)."""

    text: str = ""
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    dropped_pairs: int = 0
    error: str = ""


_RESULT_FIELDS = (
    "status", "response", "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms",
    "dropped_pairs", "error", "finished_at",
)  # fmt: skip


def _result_update_sql() -> str:
    """One conditional UPDATE per row: set the results where (id, claim token, still claimed) match."""
    qn = connection.ops.quote_name
    opts = Item._meta
    column = {name: qn(opts.get_field(name).column) for name in (*_RESULT_FIELDS, "id", "claim_token")}
    assignments = ", ".join(f"{column[name]} = %s" for name in _RESULT_FIELDS)
    return (
        f"UPDATE {qn(opts.db_table)} SET {assignments} "
        f"WHERE {column['id']} = %s AND {column['claim_token']} = %s AND {column['status']} = %s"
    )


def _json_result_update_sql() -> str:
    """PostgreSQL: the same conditional write for a whole chunk as one ``UPDATE … FROM
    jsonb_to_recordset(%s)``: the rows travel as one JSON document the server unpacks (as
    ``annotation.bulk`` inserts them), so the statement text is the same for every chunk (psycopg
    parses it once) and no value is adapted one by one in Python. The finish time is one parameter
    for the chunk; the condition is per row as in :func:`_result_update_sql`.
    """
    qn = connection.ops.quote_name
    opts = Item._meta
    names = [name for name in _RESULT_FIELDS if name != "finished_at"] + ["id"]
    fields = [opts.get_field(name) for name in names]
    column = {name: qn(field.column) for name, field in zip(names, fields, strict=True)}
    record = ", ".join(f"{column[name]} {field.cast_db_type(connection)}" for name, field in zip(names, fields, strict=True))
    assignments = ", ".join(f"{column[name]} = v.{column[name]}" for name in names if name != "id")
    finished = qn(opts.get_field("finished_at").column)
    table = qn(opts.db_table)
    return (
        f"UPDATE {table} SET {assignments}, {finished} = %s FROM jsonb_to_recordset(%s::jsonb) AS v({record}) "
        f"WHERE {table}.{column['id']} = v.{column['id']} AND {table}.{qn(opts.get_field('claim_token').column)} = %s "
        f"AND {table}.{column['status']} = %s"
    )


def store_results(token: str, outcomes: Mapping[int, ItemOutcome]) -> int:
    """Write a chunk's results in one transaction, only to rows still holding ``token``; return count.

    Each row is written only where its id, our token and "still claimed" match: the database locks
    the row and re-checks the condition, so a worker taking over a stale claim at the same moment
    either wins (and we write nothing to that row) or waits for this commit and finds it done —
    each row is written once. On PostgreSQL the chunk is one ``UPDATE … FROM jsonb_to_recordset(…)``
    statement outside any explicit transaction (cheaper than the pipelined per-row UPDATEs or a
    ``VALUES`` list; see docs/benchmarks.md, "Platform cost per round"); elsewhere the per-row UPDATEs
    go as one ``executemany`` in one transaction. Through the ORM —
    per-row ``update()`` or ``bulk_update``'s CASE expressions — the writes cost more than a chunk
    of the tiny model's generation. Should two writers ever lock the same rows in different orders,
    the database's deadlock error is an ``OperationalError``: transient, so the chunk is retried.
    """
    # Values go as they are (str, int, float or None, as the fields store them); only the timestamp
    # needs the database's form, once for the chunk: preparing each value through its field cost
    # more than the UPDATE itself.
    now = Item._meta.get_field("finished_at").get_db_prep_save(timezone.now(), connection)
    limit = Item._meta.get_field("finish_reason").max_length
    done, failed = Item.Status.DONE.value, Item.Status.FAILED.value
    rows = []
    for pk in sorted(outcomes):  # a fixed order: two writers never lock rows crosswise
        outcome = outcomes[pk]
        rows.append(
            [
                failed if outcome.error else done,
                "" if outcome.error else str(outcome.text),
                str(outcome.finish_reason or "")[:limit],
                None if outcome.prompt_tokens is None else int(outcome.prompt_tokens),
                None if outcome.completion_tokens is None else int(outcome.completion_tokens),
                None if outcome.latency_ms is None else float(outcome.latency_ms),
                int(outcome.dropped_pairs),
                str(outcome.error),
                now,
                pk,
            ]
        )
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        # One statement: atomic on its own, so no BEGIN/COMMIT round trips around it.
        keys = [Item._meta.get_field(name).column for name in _RESULT_FIELDS if name != "finished_at"] + ["id"]
        document = json.dumps([dict(zip(keys, row[:-2] + row[-1:], strict=True)) for row in rows], ensure_ascii=False)
        with connection.cursor() as cursor:
            cursor.execute(_json_result_update_sql(), [now, document, token, Item.Status.CLAIMED.value])
            return cursor.rowcount
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_result_update_sql(), [[*row, token, Item.Status.CLAIMED.value] for row in rows])
        return cursor.rowcount  # summed over the rows by sqlite3


def finish_run_if_complete(run: Run | int, *, force: bool = False) -> bool:
    """Close the run when no item is pending or claimed: done (and its transcripts handed to
    coding) when every item is done, failed when some failed. Returns True if it closed it now.

    A cancelled run stays cancelled (``force`` closes it too: used by resume with nothing left).
    """
    run_pk = run if isinstance(run, int) else run.pk
    open_statuses = [Item.Status.PENDING, Item.Status.CLAIMED]
    if Item.objects.filter(run_id=run_pk, status__in=open_statuses).exists():
        return False  # the common case after a chunk, answered without locking the run
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("model", "study").get(pk=run_pk)
        if run.status in FINISHED and not (force and run.status != Run.Status.DONE):
            return False
        # One read of the items gives the counts and, when all are done, the replies to hand over.
        statuses: dict[str, int] = {}
        responses: dict[int, list[str]] = {}
        for dialogue_id, status, text in (
            Item.objects.filter(run=run)
            .order_by("dialogue_id", "round_index")
            .values_list("dialogue_id", "status", "response")
        ):
            statuses[status] = statuses.get(status, 0) + 1
            responses.setdefault(dialogue_id, []).append(text)
        if any(statuses.get(status) for status in open_statuses):
            return False
        run.finished_at = timezone.now()
        failed = statuses.get(Item.Status.FAILED, 0)
        if failed:
            run.status = Run.Status.FAILED
            run.error = f"{failed} of {sum(statuses.values())} items failed; retry them from the run page."
        else:
            try:
                # create_generated_source is atomic, so here a savepoint of its own: if the hand-over
                # is refused, it rolls back alone and the run still closes, as failed, saying why.
                source = create_generated_source(
                    run.study, run_id=run.pk, label=f"{run.model.name} · run {run.pk}", responses=responses
                )
            except ActionError as error:
                run.status, run.error = Run.Status.FAILED, f"Transcripts could not be created: {error}"
            else:
                run.status, run.source_id, run.error = Run.Status.DONE, source.pk, ""
        run.save(update_fields=["status", "finished_at", "error", "source_id"])
        if run.status == Run.Status.DONE:
            transaction.on_commit(lambda: _send_evaluation(run_pk))
    return True


def _send_evaluation(run_id: int) -> None:
    """Ask the evaluation app to score the run, by task name: inference never imports evaluation.

    Sent only when that task exists in this Celery app (the evaluation app may not define it).
    """
    from celery import current_app

    if EVALUATION_TASK not in current_app.tasks:
        # Outside a worker the apps' tasks modules may not have been imported yet.
        current_app.loader.import_default_modules()
    if EVALUATION_TASK in current_app.tasks:
        try:
            current_app.send_task(EVALUATION_TASK, args=[run_id])
        except Exception:  # noqa: BLE001 - scoring can be started again from evaluation; the run is done
            log.exception("could not enqueue %s for run %s", EVALUATION_TASK, run_id)


# "test_model" is an action, not a pytest test, even when a test module imports it by name.
test_model.__test__ = False  # type: ignore[attr-defined]


def record_preflight(hostname: str, checks: Sequence[Mapping[str, str]]) -> WorkerPreflight:
    """Store a GPU worker's preflight (``gpu_preflight --record``), replacing its previous one."""
    ok = not any(check["status"] == "failed" for check in checks)
    row, _ = WorkerPreflight.objects.update_or_create(
        hostname=hostname[:200],
        defaults={"ok": ok, "checks": [dict(check) for check in checks], "checked_at": timezone.now()},
    )
    return row
