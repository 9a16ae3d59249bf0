"""The generation backend contract, the data that crosses it, and the per-process engine cache.

Pure of Django. Heavy libraries (torch, transformers, vllm) are imported inside the backends'
methods, so importing this package is cheap for the web process.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

Message = dict[str, str]
# What identifies a loaded engine: specs with equal keys share one (backend, base model, template, options).
EngineKey = tuple[Hashable, ...]


class BackendUnavailable(RuntimeError):
    """A backend's library is missing on this machine (e.g. vLLM on a CPU-only worker)."""


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters, recorded with every run so it can be reproduced.

    ``temperature == 0`` means greedy decoding (top_p/top_k are then ignored). ``top_k == 0``
    means no top-k filtering. ``seed`` (when set) seeds sampling; greedy needs no seed.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class ModelSpec:
    """Everything a backend needs to know about one registered model.

    ``base_model``: local path or hub id of the base weights (for ``openai``: the model id sent in
    requests, e.g. the name a LoRA was served under). ``adapter_path``: a PEFT/LoRA adapter folder
    applied on the base (transformers, vllm). ``chat_template``: a Jinja template overriding the
    tokenizer's. ``context_length``: the prompt+completion token limit (None: the model's own).
    ``timeout``: seconds per HTTP request (openai). ``max_concurrency``: parallel HTTP requests
    (openai). ``options``: backend-specific knobs, documented in each backend class.
    """

    name: str
    backend: str
    base_model: str
    adapter_path: str | None = None
    chat_template: str | None = None
    system_prompt: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    context_length: int | None = None
    server_url: str | None = None
    api_key: str | None = None
    timeout: float = 120.0
    max_concurrency: int = 8
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class GenerationResult:
    """One generated response, or the error that prevented it.

    ``finish_reason`` is ``"stop"`` (end-of-turn token), ``"length"`` (max_new_tokens reached) or
    None on error. ``latency_s`` is the wall time of the call that produced the item: the whole
    (sub-)batch for batched local backends, the item's own request (retries included) for HTTP.
    """

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def cut_reply_text(text: str, finish_reason: str | None) -> str:
    """A reply's text with whitespace trimmed and, when it was cut at max_new_tokens, without the
    replacement characters a byte-level tokenizer leaves when the cut falls inside a multi-byte
    character (common in Chinese: one character is often two or three byte tokens)."""
    text = text.strip()
    if finish_reason == "length":
        text = text.rstrip("\ufffd").rstrip()
    return text


class GenerationBackend(ABC):
    """Contract: a backend turns chat prompts into responses for one :class:`ModelSpec`.

    It is constructed cheaply from the spec (nothing is loaded or contacted); the heavy engine
    (weights, a vLLM ``LLM``) is loaded on first use and shared per process by every backend whose
    :meth:`engine_key` is equal — by default (backend, base_model, chat_template) plus the engine
    options the class names — so LoRA adapters of one base share one engine.
    :meth:`generate` takes a batch of message lists (``[{"role", "content"}, ...]``, system prompt
    already included by the caller, last message the user turn) and returns one
    :class:`GenerationResult` per prompt, in order; an item that fails (template error, prompt over
    the budget, HTTP 4xx) gets ``error`` set and never fails the rest of the batch where the
    backend can isolate it. Decoding follows ``spec.params``: greedy when temperature is 0, seeded
    when a seed is set. A prompt must not exceed :meth:`prompt_budget` tokens as counted by
    :meth:`count_prompt_tokens` (chat template applied, generation prompt added) — callers fit
    prompts with :func:`inference.prompts.fit_to_context`. :meth:`check` returns configuration
    problems as sentences (empty list: ready) without loading weights. :meth:`close` releases what
    this backend object holds (HTTP clients, threads); shared engines are released with
    :func:`release_engines`.
    """

    name: ClassVar[str] = ""
    #: option keys that change the loaded engine and therefore belong in the engine key
    engine_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    # -- engine sharing -------------------------------------------------------------------
    def engine_key(self) -> EngineKey:
        spec = self.spec
        extra = tuple((key, repr(spec.options.get(key))) for key in self.engine_options)
        return (spec.backend, spec.base_model, spec.chat_template, *extra)

    def load_engine(self) -> Any:
        """Load the heavy shared resource; called once per engine key per process."""
        return None

    def uses_gpu(self) -> bool:
        """Whether this backend's engine holds GPU memory (then it counts against
        :func:`max_gpu_engines`)."""
        return False

    @property
    def engine(self) -> Any:
        return shared_engine(self.engine_key(), self.load_engine, on_gpu=self.uses_gpu())

    # -- the contract ----------------------------------------------------------------------
    @abstractmethod
    def generate(self, batch: Sequence[Sequence[Message]]) -> list[GenerationResult]:
        """One result per prompt, in order (see the class docstring)."""

    @abstractmethod
    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the prompt as the model sees it (template applied, generation prompt added)."""

    @abstractmethod
    def check(self) -> list[str]:
        """Configuration problems as sentences; an empty list means ready to generate."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most backends hold nothing
        """Release what this object holds (not the shared engine)."""

    def context_limit(self) -> int | None:
        """Prompt + completion token limit: ``spec.context_length`` or the model's own, if known."""
        return self.spec.context_length

    def prompt_budget(self) -> int | None:
        """Largest prompt (in tokens) that leaves room for ``max_new_tokens``; None when unknown."""
        limit = self.context_limit()
        return None if limit is None else limit - self.spec.params.max_new_tokens

    def budget_error(self) -> str | None:
        """Why no prompt can fit at all (``max_new_tokens`` takes the whole context), else None.

        Said once, in these words, instead of a negative budget on every item."""
        budget = self.prompt_budget()
        if budget is None or budget >= 1:
            return None
        return (
            f"max_new_tokens {self.spec.params.max_new_tokens} leaves no room for the prompt in the "
            f"model's context of {self.context_limit()} tokens; lower max_new_tokens"
        )

    def encode_within_budget(
        self, tokenizer: Any, batch: Sequence[Sequence[Message]]
    ) -> tuple[list[GenerationResult | None], list[tuple[int, list[int]]]]:
        """Render and tokenize each prompt; a bad or too-long prompt becomes that item's error.

        Returns the per-position results (filled only for failed items) and ``(position, ids)`` of the
        prompts to generate. Checking each item first keeps one bad prompt from failing the batch (vLLM
        rejects a whole call when one prompt is too long).
        """
        no_room = self.budget_error()
        if no_room is not None:
            return [GenerationResult(error=no_room) for _ in batch], []
        results: list[GenerationResult | None] = [None] * len(batch)
        budget = self.prompt_budget()
        encoded: list[tuple[int, list[int]]] = []
        for position, messages in enumerate(batch):
            try:
                ids = encode_prompt(tokenizer, messages, self.spec.chat_template)
            except Exception as error:  # noqa: BLE001 - isolate a bad prompt from the batch
                results[position] = GenerationResult(error=f"chat template failed: {error}")
                continue
            if budget is not None and len(ids) > budget:
                results[position] = GenerationResult(
                    prompt_tokens=len(ids),
                    error=f"prompt has {len(ids)} tokens, over the budget of {budget} "
                    f"(context {self.context_limit()} - max_new_tokens {self.spec.params.max_new_tokens})",
                )
                continue
            encoded.append((position, ids))
        return results, encoded


# -- per-process engine cache ----------------------------------------------------------------
# Engines that hold GPU memory are capped per process: a vLLM engine claims its share of the GPU
# (gpu_memory_utilization) at start and keeps it, so a second base model only starts once the first
# is shut down. CPU engines (transformers on CPU) are not capped: they cost RAM, not a free-memory check.
MAX_GPU_ENGINES_ENV = "MI_MAX_GPU_ENGINES"
_ENGINES: dict[EngineKey, Any] = {}  # insertion order = least recently used first
_GPU_KEYS: set[EngineKey] = set()
_ENGINES_LOCK = threading.RLock()


class EngineDead(RuntimeError):
    """The engine stopped working (e.g. vLLM's engine core process died). It has been evicted from
    the cache; the chunk that found it dead is retried and loads a fresh one (a transient error in
    :mod:`inference.chunks`)."""


def max_gpu_engines() -> int:
    """Engines holding GPU memory one worker process keeps at once (``MI_MAX_GPU_ENGINES``, default 1)."""
    try:
        return max(1, int(os.environ.get(MAX_GPU_ENGINES_ENV, "1")))
    except ValueError:
        return 1


def shared_engine(key: EngineKey, load: Callable[[], Any], *, on_gpu: bool = False) -> Any:
    """The engine for ``key``, loading it with ``load()`` the first time (once, under a lock).

    Before a GPU engine is loaded, the least recently used GPU engines are shut down and their memory
    freed until fewer than :func:`max_gpu_engines` remain: jobs that need two base models in turn
    (a writer and a judge) swap them instead of failing on the free-memory check.
    """
    with _ENGINES_LOCK:
        if key in _ENGINES:
            _ENGINES[key] = _ENGINES.pop(key)  # most recently used last
            return _ENGINES[key]
        if on_gpu:
            while len(_GPU_KEYS) >= max_gpu_engines():
                oldest = next(k for k in _ENGINES if k in _GPU_KEYS)
                evict_engine(oldest)
        engine = load()
        _ENGINES[key] = engine
        if on_gpu:
            _GPU_KEYS.add(key)
        return engine


def cached_engine_keys() -> list[EngineKey]:
    """Keys of the engines loaded in this process, least recently used first."""
    with _ENGINES_LOCK:
        return list(_ENGINES)


def evict_engine(key: EngineKey) -> bool:
    """Shut down and forget the engine for ``key`` (if loaded), then free GPU memory."""
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            return False
        # Held only by this list, so that once it is emptied the engine can be collected.
        engines = [_ENGINES.pop(key)]
        _GPU_KEYS.discard(key)
    _close_engines(engines)
    return True


def release_engines() -> None:
    """Drop every cached engine (calls its ``close()`` if it has one) and free GPU memory."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
        _GPU_KEYS.clear()
    _close_engines(engines)
    load_tokenizer.cache_clear()


def _close_engines(engines: list[Any]) -> None:
    """``close()`` each engine, drop the references, collect, and give cached CUDA memory back."""
    while engines:
        close = getattr(engines[-1], "close", None)
        if callable(close):
            close()
        del close
        engines.pop()
    free_gpu_memory()


def free_gpu_memory() -> None:
    """Collect garbage, then return torch's cached CUDA blocks to the driver (so a vLLM engine
    started next sees the memory as free). Only if some code already imported torch."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- helpers shared by the local backends ----------------------------------------------------
# End-of-turn markers of common chat templates. A template that writes one of these ends an
# assistant turn with it, so generation must stop there even when the model's generation_config
# only names a different eos (e.g. a base model's <|endoftext|> under a ChatML template).
TURN_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


def trusts_remote_code(spec: ModelSpec) -> bool:
    """Whether this model may run the Python code its repository ships (``options["trust_remote_code"]``).

    Some released models (e.g. Baichuan2's tokenizer and weights) only load with their repository's own
    code. That code runs on the worker, so it is off unless a coordinator turns it on for that model.
    """
    return spec.options.get("trust_remote_code") is True


@lru_cache(maxsize=16)
def load_tokenizer(base_model: str, trust_remote_code: bool = False) -> Any:
    """The Hugging Face tokenizer of ``base_model``, loaded once per process, padding on the left."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    # Left padding: batched decoder-only generation appends new tokens on the right.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def render_prompt(tokenizer: Any, messages: Sequence[Message], chat_template: str | None) -> str:
    """The prompt text: the chat template applied with the assistant generation prompt added."""
    text: str = tokenizer.apply_chat_template(
        [dict(m) for m in messages], chat_template=chat_template, tokenize=False, add_generation_prompt=True
    )
    return text


def encode_prompt(tokenizer: Any, messages: Sequence[Message], chat_template: str | None) -> list[int]:
    """Token ids of the rendered prompt. Special tokens are not added again: the template already
    writes them (this is also what vLLM's ``LLM.chat`` does)."""
    text = render_prompt(tokenizer, messages, chat_template)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def stop_token_ids(tokenizer: Any, chat_template: str | None, generation_eos: Any = None) -> list[int]:
    """Token ids that end a response: the tokenizer's eos, the model's generation eos and the
    turn-end markers the chat template writes."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, generation_eos):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    template = chat_template or (tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else "")
    vocab = tokenizer.get_vocab()
    for token in TURN_END_TOKENS:
        if token in (template or "") and token in vocab:
            ids.add(vocab[token])
    return sorted(ids)


def check_local_model(spec: ModelSpec) -> list[str]:
    """Problems shared by the local backends: missing paths, unloadable tokenizer, no chat
    template, a template that fails to render. Loads the tokenizer only, never the weights."""
    problems: list[str] = []
    base = spec.base_model
    looks_local = base.startswith(("/", "./", "../", "~")) or Path(base).exists()
    if looks_local and not Path(base).expanduser().exists():
        problems.append(f"base_model path {base} does not exist")
        return problems
    if spec.adapter_path is not None:
        adapter = Path(spec.adapter_path).expanduser()
        if not adapter.exists():
            problems.append(f"adapter_path {spec.adapter_path} does not exist")
        elif not (adapter / "adapter_config.json").exists():
            problems.append(
                f"adapter_path {spec.adapter_path} has no adapter_config.json (not a PEFT adapter)"
            )
    try:
        tokenizer = load_tokenizer(base, trusts_remote_code(spec))
    except Exception as error:  # noqa: BLE001 - any loader failure is a configuration problem
        problems.append(f"cannot load the tokenizer of {base}: {type(error).__name__}: {error}")
        return problems
    if spec.chat_template is None and not tokenizer.chat_template:
        problems.append(
            f"the tokenizer of {base} has no chat template and the model sets no chat_template override"
        )
        return problems
    # Probe with a system message only when the model uses one: some templates (e.g. Gemma's)
    # reject the system role, which is fine for a model registered without a system prompt.
    probe = [{"role": "system", "content": "s"}] if spec.system_prompt else []
    probe += [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "u"},
    ]
    try:
        render_prompt(tokenizer, probe, spec.chat_template)
    except Exception as error:  # noqa: BLE001 - a template error is a configuration problem
        problems.append(f"the chat template of {spec.name} fails on a sample dialogue: {error}")
    return problems
