"""The body every chunk task shares: claim, compute, store, finish — safe under at-least-once delivery.

Generation chunks (:mod:`inference.execute`) and MI-style transformation chunks
(:mod:`inference.recipe.execute`) differ in their tables and their work, not in how a chunk survives
duplicates, killed workers and lost connections. That part lives here, once, on top of the claim
kernel (:mod:`inference.claims`: the claim fields and the claim / release / stale-takeover rules):

- a chunk claims its items with a token; nothing claimed while another delivery holds a live claim
  means "retry when that claim goes stale" (if its worker died, we take over then);
- only named transient errors (lost database or network connections, a dead engine) are retried,
  with backoff; a retry keeps the token, so it re-claims its own items; claimed items are released first so nobody
  waits for staleness;
- anything else the work raises is the caller's ``compute`` to turn into per-item outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import InterfaceError, OperationalError

from .backends.base import EngineDead

# Failures that a later attempt can cure: lost connections (builtin ConnectionError covers
# refused/reset sockets, and redis-py's ConnectionError subclasses it), and an engine that died
# (it has been evicted: the retry loads a fresh one).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    OperationalError,
    InterfaceError,
    EngineDead,
)
MAX_RETRIES = 5


def backoff(task) -> int:
    """Seconds before the next retry: 2, 4, 8, … up to a minute."""
    retries = getattr(getattr(task, "request", None), "retries", 0) or 0
    return min(60, 2 ** (retries + 1))


@dataclass(frozen=True)
class ChunkSteps:
    """What a kind of chunk does at each step; ``token`` is the chunk's claim token."""

    claim: Callable[[str], Sequence[Any]]  # token -> the items now ours
    foreign_wait: Callable[[str], int | None]  # token -> seconds until another live claim goes stale
    compute: Callable[[Sequence[Any]], Mapping[int, Any]]  # items -> outcome per item id
    store: Callable[[str, Mapping[int, Any]], int]  # write outcomes to rows still ours; count written
    release: Callable[[str], int]  # give our unfinished items back
    finish: Callable[[], object]  # close the run/job if nothing is left


@dataclass(frozen=True)
class ChunkResult:
    items: Sequence[Any]
    outcomes: Mapping[int, Any]
    written: int


def run_claimed_chunk(task, token: str, steps: ChunkSteps) -> ChunkResult:
    """Run one chunk through ``steps``. ``task`` is the bound Celery task, or None when called directly
    (commands, tests, benchmarks): then transient errors propagate instead of scheduling a retry."""
    try:
        items = steps.claim(token)
    except TRANSIENT_ERRORS as error:
        if task is None:
            raise
        raise task.retry(exc=error, countdown=backoff(task)) from error
    if not items:
        wait = steps.foreign_wait(token)
        if wait is not None and task is not None:
            # Another delivery holds these items. If it is alive it finishes them and our retry finds
            # them done; if its worker was killed, by then its claim is stale and we take over.
            raise task.retry(countdown=wait)
        steps.finish()
        return ChunkResult(items=[], outcomes={}, written=0)
    try:
        outcomes = steps.compute(items)
        written = steps.store(token, outcomes)
    except TRANSIENT_ERRORS as error:
        try:
            steps.release(token)
        except TRANSIENT_ERRORS:
            pass  # the retry re-claims them with the same token
        if task is None:
            raise
        raise task.retry(exc=error, countdown=backoff(task), kwargs={"claim_token": token}) from error
    steps.finish()
    return ChunkResult(items=items, outcomes=outcomes, written=written)
