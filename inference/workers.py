"""Which Celery pool a worker may run, and the worker commands the pages and hints show.

A worker that consumes ``gpu`` (vLLM) or ``train`` (LoRA fine-tuning) must run tasks in its main
process: vLLM starts its engine core as a child process, which a daemonic prefork child may not
do, and a GPU holds one engine or one training at a time anyway. ``mi_platform.celery`` calls
:func:`pool_refusal` when a worker starts (signal ``worker_init``) and stops a worker it refuses.
Pure: no Django, no Celery.
"""

from __future__ import annotations

from collections.abc import Iterable

GPU_QUEUES = ("gpu", "train")
ALLOWED_GPU_POOLS = ("solo", "threads")
# Celery's pool aliases, and the module names of its pool classes, by the name the docs use.
_POOL_NAMES = {"processes": "prefork", "thread": "threads", "threads": "threads"}


def worker_command(queue: str) -> str:
    """The command that starts a worker for ``queue``, as the README, pages and hints show it."""
    if queue in GPU_QUEUES:
        return f"celery -A mi_platform worker -Q {queue} -c 1 --pool solo"
    return f"celery -A mi_platform worker -Q {queue}"


def pool_name(pool: object) -> str:
    """A pool given as Celery has it at ``worker_init``: an alias (``"prefork"``) or a class."""
    if isinstance(pool, str):
        name = pool.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if ":" in pool else pool
    else:
        name = str(getattr(pool, "__module__", "")).rsplit(".", 1)[-1]
    return _POOL_NAMES.get(name, name)


def pool_refusal(queues: Iterable[str], pool: object) -> str | None:
    """Why a worker consuming ``queues`` must not start with ``pool``; None when it may."""
    gpu = sorted(set(queues) & set(GPU_QUEUES))
    name = pool_name(pool)
    if not gpu or name in ALLOWED_GPU_POOLS:
        return None
    return (
        f"This worker consumes the {' and '.join(repr(q) for q in gpu)} queue{'s' if len(gpu) > 1 else ''} "
        f"but runs the {name!r} pool. GPU work (vLLM engines, fine-tuning) must run in the worker's "
        "own process: vLLM's engine core cannot start from a daemonic pool process. Start it with "
        f"--pool solo (or --pool threads), e.g.: {worker_command(gpu[0])}"
    )
