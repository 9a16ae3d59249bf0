"""``LLM`` of 0.32.0 without a GPU: the constructor's keywords (its ``**kwargs`` must be
``EngineArgs`` fields), the engine checks the backend relies on (LoRA rank, context length, free GPU
memory), ``generate`` on ``{"prompt_token_ids": …}`` prompts, an engine core that can die and be
shut down."""

import json
from pathlib import Path
from typing import Any, get_args

from ..config.lora import MaxLoRARanks
from ..control import CONTROL, snapshot
from ..lora.request import LoRARequest
from ..outputs import CompletionOutput, RequestOutput
from ..sampling_params import SamplingParams
from ..v1.engine.exceptions import EngineDeadError

ENGINE_ARGS = {name for name, _ in snapshot()["EngineArgs"]}


class ModelConfig:
    def __init__(self, max_model_len: int) -> None:
        self.max_model_len = max_model_len
        self.runner_type = "generate"


class EngineCoreClient:
    def __init__(self) -> None:
        self.is_shut_down = False
        self.dead = False

    def shutdown(self, timeout: float | None = None) -> None:
        self.is_shut_down = True
        if CONTROL.shutdown_error is not None:
            raise CONTROL.shutdown_error


class LLMEngine:
    def __init__(self, model_config: ModelConfig) -> None:
        self.model_config = model_config
        self.engine_core = EngineCoreClient()


def _model_limit(model: str) -> int:
    config = Path(model) / "config.json"
    if not config.exists():
        raise OSError(f"{model} is not a local folder and is not a valid model identifier")
    return int(json.loads(config.read_text(encoding="utf-8"))["max_position_embeddings"])


class LLM:
    def __init__(
        self,
        model: str,
        *,
        runner: str = "auto",
        convert: str = "auto",
        tokenizer: str | None = None,
        tokenizer_mode: str = "auto",
        skip_tokenizer_init: bool = False,
        trust_remote_code: bool = False,
        allowed_local_media_path: str = "",
        allowed_media_domains: list[str] | None = None,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        quantization: str | None = None,
        revision: str | None = None,
        tokenizer_revision: str | None = None,
        chat_template: str | None = None,
        seed: int = 0,
        gpu_memory_utilization: float = 0.92,
        cpu_offload_gb: float = 0,
        offload_group_size: int = 0,
        offload_num_in_group: int = 1,
        offload_prefetch_step: int = 1,
        offload_params: set[str] | None = None,
        enforce_eager: bool = False,
        enable_return_routed_experts: bool = False,
        return_sampling_mask: bool = False,
        disable_custom_all_reduce: bool = False,
        hf_token: bool | str | None = None,
        hf_overrides: Any = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        pooler_config: Any = None,
        structured_outputs_config: Any = None,
        profiler_config: Any = None,
        attention_config: Any = None,
        kv_cache_memory_bytes: int | None = None,
        compilation_config: Any = None,
        quantization_config: Any = None,
        logits_processors: list[Any] | None = None,
        spec_method: str | None = None,
        spec_model: str | None = None,
        spec_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - ENGINE_ARGS)
        if unknown:
            # EngineArgs(**kwargs) is a dataclass: an unknown keyword is a TypeError.
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument {unknown[0]!r}")
        limit = _model_limit(model)
        max_model_len = kwargs.get("max_model_len") or limit
        if max_model_len > limit:
            raise ValueError(
                f"User-specified max_model_len ({max_model_len}) is greater than the derived "
                f"max_model_len (max_position_embeddings={limit} in model's config.json)."
            )
        self.enable_lora = bool(kwargs.get("enable_lora", False))
        self.max_lora_rank = kwargs.get("max_lora_rank", 16)
        self.max_loras = kwargs.get("max_loras", 1)
        if self.enable_lora and self.max_lora_rank not in get_args(MaxLoRARanks):
            raise ValueError(
                f"1 validation error for LoRAConfig\nmax_lora_rank\n  Input should be "
                f"{', '.join(str(r) for r in get_args(MaxLoRARanks))} [input_value={self.max_lora_rank}]"
            )
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"GPU memory utilization must be within (0, 1], got {gpu_memory_utilization}")
        if len(CONTROL.live_engines()) >= CONTROL.gpu_slots:
            # What vLLM's startup check says when another engine still holds the memory.
            raise ValueError(
                f"Free memory on device cuda:0 on startup is less than desired GPU memory utilization "
                f"({gpu_memory_utilization}, {gpu_memory_utilization * 80:.2f} GiB)."
            )
        self.model = model
        self.seed = seed
        self.kwargs = {
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "enforce_eager": enforce_eager,
            "trust_remote_code": trust_remote_code,
        }
        self.kwargs.update(kwargs)
        self.gpu_memory_utilization = gpu_memory_utilization
        self.llm_engine = LLMEngine(ModelConfig(max_model_len))
        self.model_config = self.llm_engine.model_config
        self.request_counter = 0
        CONTROL.engines.append(self)

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | None = None,
        *,
        use_tqdm: Any = True,
        lora_request: LoRARequest | None = None,
        priority: Any = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        core = self.llm_engine.engine_core
        CONTROL.calls.append(
            {
                "engine": self,
                "prompts": prompts,
                "sampling_params": sampling_params,
                "use_tqdm": use_tqdm,
                "lora_request": lora_request,
            }
        )
        if CONTROL.die_on_call is not None and len(CONTROL.calls) >= CONTROL.die_on_call:
            core.dead = True
        if core.dead or core.is_shut_down:
            raise EngineDeadError()
        if sampling_params is None:
            sampling_params = SamplingParams()
        if not isinstance(sampling_params, SamplingParams):
            raise TypeError(f"sampling_params must be SamplingParams, got {type(sampling_params).__name__}")
        if lora_request is not None:
            self._check_lora(lora_request)
        outputs = []
        for prompt in prompts:
            if not isinstance(prompt, dict) or set(prompt) != {"prompt_token_ids"}:
                raise TypeError(f"expected a TokensPrompt {{'prompt_token_ids': [...]}}, got {prompt!r}")
            ids = prompt["prompt_token_ids"]
            if not all(isinstance(i, int) for i in ids):
                raise TypeError("prompt_token_ids must be a list of ints")
            if len(ids) > self.llm_engine.model_config.max_model_len:
                raise ValueError(
                    f"The decoder prompt (length {len(ids)}) is longer than the maximum model length of "
                    f"{self.llm_engine.model_config.max_model_len}."
                )
            if CONTROL.fail_when is not None and CONTROL.fail_when(ids):
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            outputs.append(self._complete(ids, sampling_params, lora_request))
        return outputs

    def _check_lora(self, lora_request: LoRARequest) -> None:
        if not self.enable_lora:
            raise ValueError(f"LoRA is not enabled! Got lora_request {lora_request}")
        config = Path(lora_request.lora_path) / "adapter_config.json"
        rank = int(json.loads(config.read_text(encoding="utf-8"))["r"])
        if rank > self.max_lora_rank:
            raise ValueError(f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}.")

    def _complete(self, ids: list[int], sampling: SamplingParams, lora: LoRARequest | None) -> RequestOutput:
        """A deterministic reply: a few tokens that depend on the prompt, "length" at max_tokens."""
        wanted = 3 + len(ids) % 5
        count = min(wanted, sampling.max_tokens or 16)
        tokens = [(ids[-1] + i) % 50 for i in range(count)]
        if CONTROL.abort_when is not None and CONTROL.abort_when(ids):
            finish = "abort"
        else:
            finish = "length" if count == sampling.max_tokens else "stop"
        words = " ".join(f"w{t}" for t in tokens)
        text = f" [{lora.lora_name}] {words}" if lora is not None else f" {words}"
        if finish == "length":
            text += "\ufffd"  # a cut inside a multi-byte character
        self.request_counter += 1
        return RequestOutput(
            request_id=str(self.request_counter),
            prompt=None,
            prompt_token_ids=ids,
            prompt_logprobs=None,
            outputs=[CompletionOutput(0, text, tokens, None, None, finish_reason=finish)],
            finished=True,
            lora_request=lora,
        )
