"""An instant generation backend for measuring the platform's own cost (``generation_overhead.py --stub``).

``install()`` puts :class:`InstantBackend` in place of the ``openai`` backend of this process, so a
model registered as ``openai`` (no server is ever contacted) generates instantly: every reply is the
same short text, prompt tokens are counted as characters / 2. What is left of a run's time is the
platform's: items, claims, context fitting, result writes, finishing the run, the transcript
hand-over. ``bench/stub_worker_app.py`` installs it in a real Celery worker for the broker-hop figure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from inference import backends
from inference.backends.base import GenerationBackend, GenerationResult, Message

REPLY = "听起来这件事让你很困扰，你希望有什么改变呢？"


class InstantBackend(GenerationBackend):
    name = "openai"

    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        return [
            GenerationResult(
                text=REPLY,
                finish_reason="stop",
                prompt_tokens=self.count_prompt_tokens(messages),
                completion_tokens=len(REPLY),
                latency_s=0.0,
            )
            for messages in batch
        ]

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 2 + 3 * len(messages)

    def check(self) -> list[str]:
        return []


METRICS_QUEUE = "bench-metrics"


def install(app=None) -> None:
    """The instant backend in place of ``openai``; with ``app``, a finished run's metrics task goes to a
    queue no bench worker consumes (scoring is evaluation's cost, and in a solo worker it would
    delay the next run's chunks)."""
    backends.BACKENDS["openai"] = InstantBackend
    backends.close_all()  # no cached object of the real class survives
    if app is not None:
        routes = dict(app.conf.task_routes or {})
        routes["evaluation.compute_run_metrics"] = {"queue": METRICS_QUEUE}
        app.conf.task_routes = routes


in_generate = [0.0]


def timed(cls: type[GenerationBackend]) -> None:
    """Count time spent inside ``cls.generate`` in ``in_generate[0]``."""
    real = cls.generate

    def generate(self, batch):
        begin = time.perf_counter()
        try:
            return real(self, batch)
        finally:
            in_generate[0] += time.perf_counter() - begin

    cls.generate = generate  # type: ignore[method-assign]
