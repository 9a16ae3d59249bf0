"""GPU generation with vLLM's offline ``LLM`` engine; LoRA adapters of one base share one engine.

vLLM is imported inside the methods: it is only installed on GPU workers (``pip install '.[gpu]'``).
Written against vLLM 0.32.0 (the release ``torch==2.13.0`` resolves to, pinned in the ``gpu`` extra);
``tests/inference/test_vllm_contract.py`` runs this module on CPU against a stand-in checked with
that release's signatures (``tests/inference/vllm_0_32_0_signatures.json``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.backends.base import (
    BackendUnavailable,
    EngineDead,
    EngineKey,
    GenerationBackend,
    GenerationResult,
    Message,
    check_local_model,
    cut_reply_text,
    encode_prompt,
    evict_engine,
    load_tokenizer,
    stop_token_ids,
    trusts_remote_code,
)

VLLM_MISSING = "vLLM is not installed: pip install '.[gpu]'"
VLLM_VERSION = "0.32.0"
# vllm.config.lora.MaxLoRARanks in 0.32.0 (the contract test compares it with the release).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DEFAULT_MAX_LORA_RANK = 64
# Where Hugging Face configs keep a model's own context length, most common first.
CONTEXT_KEYS = ("max_position_embeddings", "seq_length", "max_sequence_length", "n_positions")


def import_vllm() -> Any:
    """The ``vllm`` module, or :class:`BackendUnavailable` with the install hint."""
    try:
        import vllm
    except ImportError as error:
        raise BackendUnavailable(f"{VLLM_MISSING} ({error})") from error
    return vllm


def adapter_rank(adapter_path: str) -> int | None:
    """The LoRA rank ``r`` of a PEFT adapter folder (its ``adapter_config.json``), None if unreadable."""
    try:
        config = json.loads((Path(adapter_path).expanduser() / "adapter_config.json").read_text("utf-8"))
        return int(config["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_config_file(base_model: str) -> Path | None:
    """The ``config.json`` of a local model folder, or of a hub id already in the Hugging Face cache
    (never downloaded here); None when neither is on this machine."""
    local = Path(base_model).expanduser() / "config.json"
    if local.exists():
        return local
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(base_model, "config.json")
    except ValueError:  # not a valid repo id either
        return None
    return Path(cached) if isinstance(cached, str) else None


def model_context_limit(base_model: str) -> int | None:
    """The model's own context length from its ``config.json`` (None when it is not on this machine)."""
    path = model_config_file(base_model)
    if path is None:
        return None
    config = json.loads(path.read_text("utf-8"))
    for key in CONTEXT_KEYS:
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def engine_option_problems(
    base_model: str, adapter_path: str | None, context_length: int | None, options: Any
) -> list[str]:
    """What vLLM would refuse about these engine options, found before an engine starts.

    ``max_lora_rank`` must be one of vLLM's ranks and at least the adapter's own rank (vLLM fails
    each request of a larger adapter otherwise); ``context_length`` (vLLM's ``max_model_len``) must
    not exceed the model's own limit.
    """
    problems: list[str] = []
    if options.get("enable_lora", True):
        max_rank = options.get("max_lora_rank", DEFAULT_MAX_LORA_RANK)
        allowed = ", ".join(str(rank) for rank in LORA_RANKS)
        if max_rank not in LORA_RANKS:
            problems.append(
                f"options['max_lora_rank'] is {max_rank!r}; vLLM {VLLM_VERSION} allows one of {allowed}"
            )
        rank = adapter_rank(adapter_path) if adapter_path else None
        if rank is not None and isinstance(max_rank, int) and rank > max_rank:
            fitting = [r for r in LORA_RANKS if r >= rank]
            advice = (
                f"set options['max_lora_rank'] to {fitting[0]}"
                if fitting
                else f"vLLM serves LoRA ranks up to {LORA_RANKS[-1]}"
            )
            problems.append(
                f"the adapter {adapter_path} has LoRA rank {rank} (r in adapter_config.json), over "
                f"max_lora_rank {max_rank}: {advice}"
            )
    limit = model_context_limit(base_model)
    if context_length is not None and limit is not None and context_length > limit:
        problems.append(
            f"context_length {context_length} is over the model's own limit of {limit} tokens "
            f"(config.json of {base_model}); vLLM refuses a max_model_len above it"
        )
    return problems


@dataclass
class VLLMEngine:
    """One ``vllm.LLM`` and the LoRA ids given out on it (adapter path → ``lora_int_id``)."""

    llm: Any
    max_model_len: int
    lora_ids: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Stop the engine core process (it holds the GPU memory), then drop the ``LLM``.

        A core that already died may fail to shut down cleanly; the references are dropped anyway so
        the cache's garbage collection and ``torch.cuda.empty_cache()`` can free what is left.
        """
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception:  # noqa: BLE001,S110 - best effort on a dead core; nothing else to do
            pass
        finally:
            self.llm = None


class VLLMBackend(GenerationBackend):
    """``vllm.LLM.generate`` on prompts rendered with the Hugging Face chat template.

    Prompts are rendered and tokenized here (exactly as ``LLM.chat`` does: template applied,
    generation prompt added, no extra special tokens) so that :meth:`count_prompt_tokens`, the
    budget check and the engine see the same tokens, and a template override needs no engine
    support. The engine is created with ``enable_lora=True`` unless ``options["enable_lora"]`` is
    False, so any adapter of the same base can join the running engine later; requests with an
    adapter carry ``LoRARequest(name, int_id, path)``. Options: ``enable_lora`` (default True),
    ``max_lora_rank`` (one of vLLM's ranks, at least every adapter's ``r``; default 64),
    ``max_loras`` (adapters resident at once, default 4), ``gpu_memory_utilization`` (default
    0.85), ``tensor_parallel_size`` (default 1), ``dtype`` (default "auto"), ``enforce_eager``
    (default False), ``trust_remote_code`` (default False: run the model repository's own Python, which
    e.g. Baichuan2 needs; tokenizer and engine alike), ``engine_kwargs`` (dict passed to ``vllm.LLM`` as is). The engine seed is
    ``params.seed`` (0 when unset); each request also carries its own seed, so sampled output does
    not depend on batch composition. Options are checked (:func:`engine_option_problems`) before an
    engine starts. An engine counts against the worker's GPU engine limit (``MI_MAX_GPU_ENGINES``,
    default 1): loading another base model shuts this one down first. A dead engine core is
    evicted and :class:`EngineDead` raised, so the chunk is retried on a fresh engine.
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
        "trust_remote_code",
        "engine_kwargs",
    )

    def engine_key(self) -> EngineKey:
        # max_model_len is fixed when the engine is built, so it is part of the key.
        return (*super().engine_key(), ("context_length", self.spec.context_length))

    def uses_gpu(self) -> bool:
        return True

    def option_problems(self) -> list[str]:
        """:func:`engine_option_problems` for this spec (its adapter, context length, options)."""
        spec = self.spec
        return engine_option_problems(spec.base_model, spec.adapter_path, spec.context_length, spec.options)

    def load_engine(self) -> VLLMEngine:
        vllm = import_vllm()
        problems = self.option_problems()
        if problems:
            raise ValueError("; ".join(problems))
        options = self.spec.options
        kwargs: dict[str, Any] = {
            "model": self.spec.base_model,
            "seed": self.spec.params.seed if self.spec.params.seed is not None else 0,
            "enable_lora": bool(options.get("enable_lora", True)),
            "gpu_memory_utilization": float(options.get("gpu_memory_utilization", 0.85)),
            "tensor_parallel_size": int(options.get("tensor_parallel_size", 1)),
            "dtype": options.get("dtype", "auto"),
            "enforce_eager": bool(options.get("enforce_eager", False)),
            "trust_remote_code": trusts_remote_code(self.spec),
        }
        if kwargs["enable_lora"]:
            kwargs["max_lora_rank"] = int(options.get("max_lora_rank", DEFAULT_MAX_LORA_RANK))
            kwargs["max_loras"] = int(options.get("max_loras", 4))
        if self.spec.context_length is not None:
            kwargs["max_model_len"] = self.spec.context_length
        kwargs.update(options.get("engine_kwargs") or {})
        llm = vllm.LLM(**kwargs)
        return VLLMEngine(llm=llm, max_model_len=int(llm.llm_engine.model_config.max_model_len))

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
        return len(encode_prompt(load_tokenizer(self.spec.base_model, trusts_remote_code(self.spec)), messages, self.spec.chat_template))

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
        return problems + self.option_problems() + check_local_model(self.spec)

    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        vllm = import_vllm()
        problems = self.option_problems()
        if problems:
            # An adapter joining a running engine is checked too (its rank against the engine's).
            raise ValueError("; ".join(problems))
        engine = self.engine
        tokenizer = load_tokenizer(self.spec.base_model, trusts_remote_code(self.spec))
        params = self.spec.params
        results, ready = self.encode_within_budget(tokenizer, batch)
        if ready:
            sampling = vllm.SamplingParams(
                temperature=0.0 if params.greedy else params.temperature,
                top_p=1.0 if params.greedy else params.top_p,
                # 0 disables top-k in vLLM 0.32 (-1 is still accepted, but deprecated).
                top_k=0 if params.greedy else params.top_k,
                max_tokens=params.max_new_tokens,
                repetition_penalty=params.repetition_penalty,
                seed=params.seed,
                stop_token_ids=stop_token_ids(tokenizer, self.spec.chat_template),
            )
            lora = self._lora_request(engine)
            from vllm.v1.engine.exceptions import EngineDeadError

            try:
                outputs = self._run_isolated(
                    engine, [ids for _, ids in ready], sampling, lora, EngineDeadError
                )
            except EngineDeadError as error:
                evict_engine(self.engine_key())
                raise EngineDead(
                    f"the vLLM engine of {self.spec.base_model} died ({error}); it was shut down and "
                    "the chunk is retried on a new engine"
                ) from error
            for (position, _), result in zip(ready, outputs, strict=True):
                results[position] = result
        return [
            result if result is not None else GenerationResult(error="not generated") for result in results
        ]

    def _run_isolated(
        self, engine: VLLMEngine, prompts: list[list[int]], sampling: Any, lora: Any, dead: type[Exception]
    ) -> list[GenerationResult]:
        """The whole batch in one call; if it fails, each prompt alone, so one bad prompt fails only
        itself. A dead engine is never retried here (``dead`` propagates)."""
        try:
            return self._run(engine, prompts, sampling, lora)
        except dead:
            raise
        except Exception:  # noqa: BLE001 - run items alone so one bad prompt fails only itself
            outputs: list[GenerationResult] = []
            for ids in prompts:
                try:
                    outputs.extend(self._run(engine, [ids], sampling, lora))
                except dead:
                    raise
                except Exception as error:  # noqa: BLE001
                    outputs.append(
                        GenerationResult(prompt_tokens=len(ids), error=f"{type(error).__name__}: {error}")
                    )
            return outputs

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
                    # "abort" (the engine gave up on the request) or "error" (a request-level
                    # failure): the partial text is not a reply.
                    error=None
                    if completion.finish_reason in ("stop", "length")
                    else f"vLLM ended the request with finish_reason {completion.finish_reason!r}",
                )
            )
        return results

    def close(self) -> None:
        """Nothing per object; the engine is shared (see :func:`release_engines`)."""
