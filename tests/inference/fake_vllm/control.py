"""The stand-in's ledger and switches (not part of vLLM)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parents[1] / "vllm_0_32_0_signatures.json"


def snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@dataclass
class Control:
    #: engines that may hold GPU memory at once (one GPU at 85 %: one engine)
    gpu_slots: int = 1
    engines: list[Any] = field(default_factory=list)  # every LLM built, in order
    calls: list[dict[str, Any]] = field(default_factory=list)  # every generate call
    die_on_call: int | None = None  # the engine core dies on this generate call (1-based)
    fail_when: Callable[[list[int]], bool] | None = None  # a batch holding such a prompt raises
    abort_when: Callable[[list[int]], bool] | None = None  # such a prompt finishes "abort"
    shutdown_error: Exception | None = None  # shutdown() raises this (a core already gone)

    def live_engines(self) -> list[Any]:
        return [llm for llm in self.engines if not llm.llm_engine.engine_core.is_shut_down]

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


CONTROL = Control()
