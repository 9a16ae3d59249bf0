"""GPU generation with vLLM's offline ``LLM`` engine; LoRA adapters of one base share one engine.

vLLM is imported inside the methods: it is only installed on GPU workers (``pip install '.[gpu]'``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inference.backends.base import (
    BackendUnavailable,
    EngineKey,
    GenerationBackend,
    GenerationResult,
    Message,
    check_local_model,
    cut_reply_text,
    encode_prompt,
    load_tokenizer,
    stop_token_ids,
)

VLLM_MISSING = "vLLM is not installed: pip install '.[gpu]'"


def import_vllm() -> Any:
    """The ``vllm`` module, or :class:`BackendUnavailable` with the install hint."""
    try:
        import vllm
    except ImportError as error:
        raise BackendUnavailable(f"{VLLM_MISSING} ({error})") from error
    return vllm


@dataclass
class VLLMEngine:
    """One ``vllm.LLM`` and the LoRA ids given out on it (adapter path → ``lora_int_id``)."""

    llm: Any
    max_model_len: int
    lora_ids: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Best effort: stop the engine core process of recent vLLM versions, drop the LLM."""
        engine_core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(engine_core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None


class VLLMBackend(GenerationBackend):
    """``vllm.LLM.generate`` on prompts rendered with the Hugging Face chat template.

    Prompts are rendered and tokenized here (exactly as ``LLM.chat`` does: template applied,
    generation prompt added, no extra special tokens) so that :meth:`count_prompt_tokens`, the
    budget check and the engine see the same tokens, and a template override needs no engine
    support. The engine is created with ``enable_lora=True`` unless ``options["enable_lora"]`` is
    False, so any adapter of the same base can join the running engine later; requests with an
    adapter carry ``LoRARequest(name, int_id, path)``. Options: ``enable_lora`` (default True),
    ``max_lora_rank`` (default 64), ``max_loras`` (adapters resident at once, default 4),
    ``gpu_memory_utilization`` (default 0.85), ``tensor_parallel_size`` (default 1), ``dtype``
    (default "auto"), ``enforce_eager`` (default False), ``engine_kwargs`` (dict passed to
    ``vllm.LLM`` as is). The engine seed is ``params.seed`` (0 when unset); each request also
    carries its own seed, so sampled output does not depend on batch composition.
    """

    name = "vllm"
    engine_options = (
        "enable_lora",
        "max_lora_rank",
        "max_loras",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "dtype",
        "enforce_eager",
        "engine_kwargs",
    )

    def engine_key(self) -> EngineKey:
        # max_model_len is fixed when the engine is built, so it is part of the key.
        return (*super().engine_key(), ("context_length", self.spec.context_length))

    def load_engine(self) -> VLLMEngine:
        vllm = import_vllm()
        options = self.spec.options
        kwargs: dict[str, Any] = {
            "model": self.spec.base_model,
            "seed": self.spec.params.seed if self.spec.params.seed is not None else 0,
            "enable_lora": bool(options.get("enable_lora", True)),
            "gpu_memory_utilization": float(options.get("gpu_memory_utilization", 0.85)),
            "tensor_parallel_size": int(options.get("tensor_parallel_size", 1)),
            "dtype": options.get("dtype", "auto"),
            "enforce_eager": bool(options.get("enforce_eager", False)),
        }
        if kwargs["enable_lora"]:
            kwargs["max_lora_rank"] = int(options.get("max_lora_rank", 64))
            kwargs["max_loras"] = int(options.get("max_loras", 4))
        if self.spec.context_length is not None:
            kwargs["max_model_len"] = self.spec.context_length
        kwargs.update(options.get("engine_kwargs") or {})
        llm = vllm.LLM(**kwargs)
        # Where the engine exposes its model config differs between vLLM versions.
        engine = llm.llm_engine
        model_config = getattr(engine, "model_config", None) or engine.get_model_config()
        return VLLMEngine(llm=llm, max_model_len=int(model_config.max_model_len))

    def _lora_request(self, engine: VLLMEngine) -> Any:
        path = self.spec.adapter_path
        if path is None:
            return None
        from vllm.lora.request import LoRARequest

        with engine.lock:
            # One stable id per adapter path for the engine's lifetime: vLLM caches adapters by id.
            lora_id = engine.lora_ids.setdefault(path, len(engine.lora_ids) + 1)
        return LoRARequest(f"adapter_{lora_id}", lora_id, path)

    def context_limit(self) -> int | None:
        if self.spec.context_length is not None:
            return self.spec.context_length
        engine: VLLMEngine = self.engine
        return engine.max_model_len

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(encode_prompt(load_tokenizer(self.spec.base_model), messages, self.spec.chat_template))

    def check(self) -> list[str]:
        problems = []
        try:
            import_vllm()
        except BackendUnavailable:
            problems.append(VLLM_MISSING)
        try:
            import torch

            if not torch.cuda.is_available():
                problems.append("no CUDA GPU is visible to this process (vLLM needs one)")
        except ImportError:
            problems.append("torch is not installed")
        if self.spec.adapter_path is not None and self.spec.options.get("enable_lora") is False:
            problems.append("adapter_path is set but options['enable_lora'] is False")
        return problems + check_local_model(self.spec)

    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        engine = self.engine
        vllm = import_vllm()
        tokenizer = load_tokenizer(self.spec.base_model)
        params = self.spec.params
        results, ready = self.encode_within_budget(tokenizer, batch)
        if ready:
            sampling = vllm.SamplingParams(
                temperature=0.0 if params.greedy else params.temperature,
                top_p=1.0 if params.greedy else params.top_p,
                # -1 disables top-k in every vLLM version (0 only in recent ones).
                top_k=-1 if params.greedy or params.top_k <= 0 else params.top_k,
                max_tokens=params.max_new_tokens,
                repetition_penalty=params.repetition_penalty,
                seed=params.seed,
                stop_token_ids=stop_token_ids(tokenizer, self.spec.chat_template),
            )
            lora = self._lora_request(engine)
            try:
                outputs = self._run(engine, [ids for _, ids in ready], sampling, lora)
            except Exception:  # noqa: BLE001 - run items alone so one bad prompt fails only itself
                outputs = []
                for _, ids in ready:
                    try:
                        outputs.extend(self._run(engine, [ids], sampling, lora))
                    except Exception as error:  # noqa: BLE001
                        outputs.append(
                            GenerationResult(prompt_tokens=len(ids), error=f"{type(error).__name__}: {error}")
                        )
            for (position, _), result in zip(ready, outputs, strict=True):
                results[position] = result
        return [
            result if result is not None else GenerationResult(error="not generated") for result in results
        ]

    def _run(
        self, engine: VLLMEngine, prompts: list[list[int]], sampling: Any, lora: Any
    ) -> list[GenerationResult]:
        started = time.perf_counter()
        outputs = engine.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompts],
            sampling_params=sampling,
            use_tqdm=False,
            lora_request=lora,
        )
        latency = time.perf_counter() - started
        results = []
        for prompt, output in zip(prompts, outputs, strict=True):
            completion = output.outputs[0]
            results.append(
                GenerationResult(
                    text=cut_reply_text(completion.text, completion.finish_reason),
                    finish_reason=completion.finish_reason,
                    prompt_tokens=len(prompt),
                    completion_tokens=len(completion.token_ids),
                    latency_s=latency,
                )
            )
        return results

    def close(self) -> None:
        """Nothing per object; the engine is shared (see :func:`release_engines`)."""
