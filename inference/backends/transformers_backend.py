"""Local generation with Hugging Face transformers (CPU or one GPU), PEFT adapters on a shared base."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from inference.backends.base import (
    GenerationBackend,
    GenerationResult,
    Message,
    check_local_model,
    cut_reply_text,
    encode_prompt,
    load_tokenizer,
    stop_token_ids,
)


@dataclass
class TransformersEngine:
    """A base model and its tokenizer, shared by every spec with the same engine key.

    ``adapters`` maps adapter path → PEFT adapter name; once one adapter is loaded ``model`` is a
    ``PeftModel`` wrapping the base. ``lock`` serialises adapter switching with generation: the
    active adapter is model-wide state.
    """

    tokenizer: Any
    model: Any
    device: str
    adapters: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Drop the weights (the cache then frees GPU memory: :func:`free_gpu_memory`)."""
        self.model = None


class TransformersBackend(GenerationBackend):
    """transformers ``generate`` with left-padded batches.

    Options: ``device`` ("cpu", "cuda", "cuda:1"; default cuda when available), ``dtype``
    ("float32", "bfloat16", "float16", "auto"; default float32 on CPU, "auto" on GPU),
    ``batch_size`` (prompts per ``generate`` call, default 8; prompts are sorted by length first
    so a sub-batch carries little padding). With a seed, ``torch.manual_seed(seed)`` is called
    before every sub-batch, so sampled output depends on how prompts were grouped; greedy output
    does not.
    """

    name = "transformers"
    engine_options = ("device", "dtype")

    # -- engine ----------------------------------------------------------------------------
    def uses_gpu(self) -> bool:
        device = self.spec.options.get("device")
        if device:
            return str(device).startswith("cuda")
        import torch

        return bool(torch.cuda.is_available())

    def load_engine(self) -> TransformersEngine:
        import torch
        from transformers import AutoModelForCausalLM

        options = self.spec.options
        device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype_name = options.get("dtype") or ("float32" if device == "cpu" else "auto")
        dtype = dtype_name if dtype_name == "auto" else getattr(torch, dtype_name)
        tokenizer = load_tokenizer(self.spec.base_model)
        model = AutoModelForCausalLM.from_pretrained(self.spec.base_model, dtype=dtype)
        # transformers declares PreTrainedModel.to through functools.wraps(torch.nn.Module.to), a type
        # mypy cannot bind to the instance, and leaves eval() unannotated.
        model.to(device)  # type: ignore[arg-type]
        model.eval()  # type: ignore[no-untyped-call]
        return TransformersEngine(tokenizer=tokenizer, model=model, device=device)

    def _adapter_name(self, engine: TransformersEngine) -> str | None:
        """Load this spec's adapter onto the shared base once; return its PEFT name."""
        path = self.spec.adapter_path
        if path is None:
            return None
        with engine.lock:
            if path not in engine.adapters:
                from peft import PeftModel

                name = f"adapter_{len(engine.adapters) + 1}"
                if isinstance(engine.model, PeftModel):
                    engine.model.load_adapter(path, adapter_name=name)
                else:
                    engine.model = PeftModel.from_pretrained(engine.model, path, adapter_name=name)
                engine.model.to(engine.device)
                engine.model.eval()
                engine.adapters[path] = name
            return engine.adapters[path]

    def context_limit(self) -> int | None:
        if self.spec.context_length is not None:
            return self.spec.context_length
        return getattr(self.engine.model.config, "max_position_embeddings", None)

    # -- contract ----------------------------------------------------------------------------
    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(encode_prompt(load_tokenizer(self.spec.base_model), messages, self.spec.chat_template))

    def check(self) -> list[str]:
        problems = check_local_model(self.spec)
        if self.spec.adapter_path is not None:
            try:
                import peft  # noqa: F401
            except ImportError:
                problems.append("peft is not installed, so adapter_path cannot be applied: pip install peft")
        return problems

    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        engine = self.engine
        tokenizer = engine.tokenizer
        results, encoded = self.encode_within_budget(tokenizer, batch)

        adapter = self._adapter_name(engine) if encoded else None
        batch_size = max(1, int(self.spec.options.get("batch_size", 8)))
        # Similar lengths together: less padding, and the order is fixed for a given batch.
        encoded.sort(key=lambda item: (len(item[1]), item[0]))
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            try:
                outputs = self._generate_chunk(engine, adapter, [ids for _, ids in chunk])
            except Exception as error:  # noqa: BLE001 - retry alone to find the failing item
                if len(chunk) == 1:
                    results[chunk[0][0]] = GenerationResult(
                        prompt_tokens=len(chunk[0][1]), error=f"{type(error).__name__}: {error}"
                    )
                    continue
                outputs = []
                for _, ids in chunk:
                    try:
                        outputs.extend(self._generate_chunk(engine, adapter, [ids]))
                    except Exception as item_error:  # noqa: BLE001
                        outputs.append(
                            GenerationResult(
                                prompt_tokens=len(ids), error=f"{type(item_error).__name__}: {item_error}"
                            )
                        )
            for (position, _), result in zip(chunk, outputs, strict=True):
                results[position] = result
        return [
            result if result is not None else GenerationResult(error="not generated") for result in results
        ]

    def _generate_chunk(
        self, engine: TransformersEngine, adapter: str | None, prompts: list[list[int]]
    ) -> list[GenerationResult]:
        import torch
        from transformers import GenerationConfig

        params = self.spec.params
        tokenizer = engine.tokenizer
        padded = tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        input_ids = padded["input_ids"].to(engine.device)
        attention_mask = padded["attention_mask"].to(engine.device)
        stops = stop_token_ids(
            tokenizer, self.spec.chat_template, engine.model.generation_config.eos_token_id
        )
        # Every field set explicitly: transformers fills unset (None) fields from the model's own
        # generation_config, which could silently turn sampling on or change top_k.
        config = GenerationConfig(  # type: ignore[no-untyped-call]  # its __init__ takes bare **kwargs
            max_new_tokens=params.max_new_tokens,
            do_sample=not params.greedy,
            temperature=1.0 if params.greedy else params.temperature,
            top_p=1.0 if params.greedy else params.top_p,
            # Greedy ignores top_k; 50 is transformers' default, so no "unused flag" warning.
            top_k=50 if params.greedy else params.top_k,
            repetition_penalty=params.repetition_penalty,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
        started = time.perf_counter()
        with engine.lock:
            model = engine.model
            if adapter is not None:
                model.set_adapter(adapter)
                context = nullcontext()
            elif engine.adapters:
                context = model.disable_adapter()  # the base model of a PeftModel
            else:
                context = nullcontext()
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with context, torch.inference_mode():
                output = model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, generation_config=config
                )
        latency = time.perf_counter() - started

        new_tokens = output[:, input_ids.shape[1] :].tolist()
        stop_set = set(stops)
        results = []
        for prompt, tokens in zip(prompts, new_tokens, strict=True):
            end = next((i for i, token in enumerate(tokens) if token in stop_set), None)
            if end is None:
                kept, finish, count = tokens, "length", len(tokens)
            else:
                # The stop token counts as generated (as in vLLM's usage), but is not in the text.
                kept, finish, count = tokens[:end], "stop", end + 1
            results.append(
                GenerationResult(
                    text=cut_reply_text(tokenizer.decode(kept, skip_special_tokens=True), finish),
                    finish_reason=finish,
                    prompt_tokens=len(prompt),
                    completion_tokens=count,
                    latency_s=latency,
                )
            )
        return results
