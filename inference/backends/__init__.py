"""Generation backends behind a registry.

``BACKENDS`` maps a model's ``backend`` field to its class; :func:`get_backend` returns the backend
object for a :class:`ModelSpec`. Backend objects are cached per process by their full spec, and
the heavy engines behind them by engine key — (backend, base_model, chat_template) plus the
engine options a class names — so every LoRA adapter of one base model runs on one loaded engine
(transformers: PEFT adapters loaded onto the shared base and switched per call; vLLM: one
``LLM(enable_lora=True)`` and a ``LoRARequest`` per adapter). See :class:`GenerationBackend` for
the contract. Importing this package imports neither torch nor vllm.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict

from inference.backends.base import (
    BackendUnavailable,
    GenerationBackend,
    GenerationParams,
    GenerationResult,
    ModelSpec,
    release_engines,
)
from inference.backends.openai_backend import OpenAIBackend
from inference.backends.transformers_backend import TransformersBackend
from inference.backends.vllm_backend import VLLMBackend

BACKENDS: dict[str, type[GenerationBackend]] = {
    "transformers": TransformersBackend,
    "openai": OpenAIBackend,
    "vllm": VLLMBackend,
}

_INSTANCES: dict[str, GenerationBackend] = {}
_INSTANCES_LOCK = threading.Lock()


def _spec_key(spec: ModelSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True, default=str)


def get_backend(spec: ModelSpec) -> GenerationBackend:
    """The backend object for ``spec`` (one per distinct spec per process; engines shared).

    Raises ValueError naming the field when ``spec.backend`` is not registered.
    """
    try:
        cls = BACKENDS[spec.backend]
    except KeyError:
        raise ValueError(
            f"model {spec.name!r}: field 'backend' must be one of {sorted(BACKENDS)}, got {spec.backend!r}"
        ) from None
    key = _spec_key(spec)
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = cls(spec)
        return _INSTANCES[key]


def close_all() -> None:
    """Close every cached backend object, then release the shared engines (worker shutdown, tests)."""
    with _INSTANCES_LOCK:
        instances = list(_INSTANCES.values())
        _INSTANCES.clear()
    for backend in instances:
        backend.close()
    release_engines()


__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "GenerationBackend",
    "GenerationParams",
    "GenerationResult",
    "ModelSpec",
    "close_all",
    "get_backend",
    "release_engines",
]
