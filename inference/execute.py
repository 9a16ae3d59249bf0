"""The work of one generation chunk, called by its Celery tasks (``inference.tasks``) and directly by
benchmarks and tests: claim the items, build their prompts fitted to the context, call the backend
once for the chunk, store the outcomes, close the run when nothing is left.

State changes go through :mod:`inference.actions` (claim, store, release, finish); the discipline
that makes a chunk safe under at-least-once delivery is :func:`inference.chunks.run_claimed_chunk`'s.
Backend errors become per-item outcomes (the run page shows them); only named transient errors
(lost database or network connections) propagate, to be retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import actions, claims, prompts, registry
from .backends import get_backend
from .chunks import TRANSIENT_ERRORS, ChunkSteps, run_claimed_chunk
from .models import GenerationItem, GenerationRun


def execute_chunk(
    task, run_id: int, item_ids: Sequence[int], claim_token: str | None = None
) -> dict[str, Any]:
    """Claim ``item_ids`` of run ``run_id``, generate the ones claimed in one backend call, store them.

    ``task`` is the bound Celery task (for retries) or None when called directly (benchmarks).
    The claim/retry/store discipline is :func:`inference.chunks.run_claimed_chunk`'s; this is the
    body of the ``run_chunk``/``run_chunk_gpu`` tasks.
    """
    run = GenerationRun.objects.filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "claimed": 0, "skipped": "no such run"}
    if run.status in (GenerationRun.Status.CANCELLED, GenerationRun.Status.DONE):
        return {"run": run_id, "claimed": 0, "skipped": run.status}

    steps = ChunkSteps(
        claim=lambda token: actions.claim_items(run, item_ids, token),
        foreign_wait=lambda token: claims.seconds_until_foreign_claims_go_stale(GenerationItem, item_ids, token),
        # Looked up at call time (not bound here): a test worker may wrap it to slow chunks down.
        compute=lambda items: generate_outcomes(run, items),
        store=actions.store_results,
        release=actions.release_claims,
        finish=lambda: actions.finish_run_if_complete(run),
    )
    result = run_claimed_chunk(task, claim_token or claims.new_claim_token(), steps)
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
    no_room = backend.budget_error()
    if no_room is not None:  # every item would report the same negative budget: say why once, plainly
        return {item.pk: actions.ItemOutcome(error=no_room) for item in items}

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
