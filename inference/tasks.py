"""Celery tasks of generation: thin — take ids, claim, call the backend once per chunk, store, finish.

``run_chunk`` (queue ``cpu``) and ``run_chunk_gpu`` (queue ``gpu``) share one body. Delivery is
at least once (``acks_late``, ``reject_on_worker_lost``): a chunk may run twice, or after a worker
was killed half-way. :mod:`inference.actions` makes that harmless — see its docstring. Only named
transient errors (lost database or network connections) are retried; anything else a backend
raises marks the chunk's items failed with the message, so the run page shows it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from celery import shared_task
from django.utils import timezone

from . import actions, prompts, registry
from .backends import get_backend
from .chunks import (
    MAX_RETRIES,
    TRANSIENT_ERRORS,
    ChunkSteps,
    run_claimed_chunk,
    seconds_until_foreign_claims_go_stale,
)
from .models import GenerationItem, GenerationRun

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": MAX_RETRIES,
}


@shared_task(name="inference.tasks.run_chunk", **_TASK_OPTIONS)
def run_chunk(self, run_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Generate one chunk of a run on the ``cpu`` queue (transformers, OpenAI-compatible HTTP)."""
    return execute_chunk(self, run_id, item_ids, claim_token)


@shared_task(name="inference.tasks.run_chunk_gpu", **_TASK_OPTIONS)
def run_chunk_gpu(self, run_id: int, item_ids: list[int], claim_token: str | None = None) -> dict[str, Any]:
    """Generate one chunk of a run on the ``gpu`` queue (vLLM; its engine stays loaded per process)."""
    return execute_chunk(self, run_id, item_ids, claim_token)


@shared_task(name="inference.tasks.test_model")
def test_model(model_id: int) -> dict[str, Any]:
    """ "Test this model" on a worker of the model's queue; the result is read from the result backend."""
    from .models import RegisteredModel

    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return {"model": model_id, "ok": False, "problems": [f"model {model_id} no longer exists"]}
    problems = actions.test_model(model)
    return {"model": model_id, "ok": not problems, "problems": problems, "at": timezone.now().isoformat()}


def execute_chunk(
    task, run_id: int, item_ids: Sequence[int], claim_token: str | None = None
) -> dict[str, Any]:
    """Claim ``item_ids`` of run ``run_id``, generate the ones claimed in one backend call, store them.

    ``task`` is the bound Celery task (for retries) or None when called directly (benchmarks).
    The claim/retry/store discipline is :func:`inference.chunks.run_claimed_chunk`'s.
    """
    run = GenerationRun.objects.filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "claimed": 0, "skipped": "no such run"}
    if run.status in (GenerationRun.Status.CANCELLED, GenerationRun.Status.DONE):
        return {"run": run_id, "claimed": 0, "skipped": run.status}

    def compute(items: Sequence[GenerationItem]) -> dict[int, actions.ItemOutcome]:
        _test_delay()
        return generate_outcomes(run, items)

    steps = ChunkSteps(
        claim=lambda token: actions.claim_items(run, item_ids, token),
        foreign_wait=lambda token: seconds_until_foreign_claims_go_stale(
            GenerationItem, item_ids, token, actions.claim_stale_seconds()
        ),
        compute=compute,
        store=actions.store_results,
        release=actions.release_claims,
        finish=lambda: actions.finish_run_if_complete(run),
    )
    result = run_claimed_chunk(task, claim_token or actions.new_claim_token(), steps)
    if not result.items:
        return {"run": run_id, "claimed": 0}
    failed = sum(1 for outcome in result.outcomes.values() if outcome.error)
    return {"run": run_id, "claimed": len(result.items), "written": result.written, "failed": failed}


def generate_outcomes(run: GenerationRun, items: Sequence[GenerationItem]) -> dict[int, actions.ItemOutcome]:
    """The chunk's prompts, fitted to the context, through the backend in one batch; one outcome per item."""
    outcomes: dict[int, actions.ItemOutcome] = {}
    try:
        backend = get_backend(registry.spec_from_snapshot(run.params))
        budget = backend.prompt_budget()
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - a backend that cannot start fails the chunk, visibly
        message = f"backend could not start: {type(error).__name__}: {error}"
        return {item.pk: actions.ItemOutcome(error=message) for item in items}

    known_to_fit = _prefixes_known_to_fit(items, backend, budget) if budget is not None else set()
    batch: list[list[dict[str, str]]] = []
    batch_items: list[tuple[GenerationItem, int]] = []
    for item in items:
        messages, dropped = list(item.messages), 0
        try:
            if budget is not None and item.pk not in known_to_fit:
                fitted = prompts.fit_to_context(messages, backend.count_prompt_tokens, budget)
                if not fitted.fits:
                    tokens = backend.count_prompt_tokens(fitted.messages)
                    outcomes[item.pk] = actions.ItemOutcome(
                        dropped_pairs=fitted.dropped_pairs,
                        prompt_tokens=tokens,
                        error=f"prompt too long: {tokens} tokens with no history left, over the budget of "
                        f"{budget} (context minus max_new_tokens); the current client turn is never cut",
                    )
                    continue
                messages, dropped = fitted.messages, fitted.dropped_pairs
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - one bad prompt fails only its item
            outcomes[item.pk] = actions.ItemOutcome(error=f"prompt could not be built: {error}")
            continue
        batch.append(messages)
        batch_items.append((item, dropped))

    if batch:
        try:
            results = backend.generate(batch)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. out of memory: the chunk fails, visibly
            message = f"{type(error).__name__}: {error}"
            results = None
            for item, dropped in batch_items:
                outcomes[item.pk] = actions.ItemOutcome(dropped_pairs=dropped, error=message)
        if results is not None:
            for (item, dropped), result in zip(batch_items, results, strict=True):
                outcomes[item.pk] = actions.ItemOutcome(
                    text=result.text,
                    finish_reason=result.finish_reason or "",
                    prompt_tokens=result.prompt_tokens or None,
                    completion_tokens=result.completion_tokens if result.ok else None,
                    latency_ms=round(result.latency_s * 1000, 3),
                    dropped_pairs=dropped,
                    error=result.error or "",
                )
    return outcomes


# Tokens of slack when a prompt is judged by a longer prompt of the same dialogue: templates that
# render the last turn differently can make a prefix a few tokens longer than its share.
PREFIX_MARGIN_TOKENS = 16


def _prefixes_known_to_fit(items: Sequence[GenerationItem], backend, budget: int) -> set[int]:
    """Items whose prompt is a prefix of a longer prompt in the chunk that fits with room to spare.

    Round j of a dialogue sees exactly the first messages of round i > j, so when the longest
    round of a dialogue in the chunk fits, its earlier rounds need no token count of their own —
    the same monotonicity :func:`inference.prompts.fit_to_context` relies on. One count per
    dialogue instead of one per round; an item not covered is fitted on its own as usual.
    """
    longest: dict[int, GenerationItem] = {}
    for item in items:
        if item.dialogue_id not in longest or len(item.messages) > len(longest[item.dialogue_id].messages):
            longest[item.dialogue_id] = item
    fits: set[int] = set()
    for head in longest.values():
        if backend.count_prompt_tokens(head.messages) > budget - PREFIX_MARGIN_TOKENS:
            continue
        for item in items:
            if item.messages == head.messages[: len(item.messages)]:  # the head itself included
                fits.add(item.pk)
    return fits


def _test_delay() -> None:
    """Fault tests slow chunks down (env INFERENCE_TEST_DELAY_SECONDS) to kill a worker mid-chunk."""
    delay = float(os.environ.get("INFERENCE_TEST_DELAY_SECONDS") or 0)
    if delay > 0:
        time.sleep(delay)


# Celery's autodiscovery imports only ``inference.tasks``: importing the recipe's tasks here registers
# them in every worker.
from .recipe import tasks as recipe_tasks  # noqa: E402,F401
