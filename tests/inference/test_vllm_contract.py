"""The vLLM backend on CPU, against a stand-in checked with vLLM 0.32.0's own signatures.

Part one compares the stand-in (``tests/inference/fake_vllm``) with the snapshot that
``scripts/vllm_signatures.py`` took from the pinned release's wheel
(``tests/inference/vllm_0_32_0_signatures.json``): constructor keywords, ``generate``,
``SamplingParams``/``LoRARequest``/``CompletionOutput`` fields, the LoRA ranks, the finish reasons.
Part two runs every path of ``inference/backends/vllm_backend.py`` through that stand-in; CI runs
this file alone first with branch coverage of that module and fails under 100 % (scripts/test.sh).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import get_args

import pytest

from inference.backends import GenerationParams, ModelSpec, close_all
from inference.backends.base import (
    EngineDead,
    cached_engine_keys,
    encode_prompt,
    load_tokenizer,
    release_engines,
    stop_token_ids,
)
from inference.backends.vllm_backend import (
    LORA_RANKS,
    VLLM_MISSING,
    VLLM_VERSION,
    BackendUnavailable,
    VLLMBackend,
    VLLMEngine,
    adapter_rank,
    engine_option_problems,
    model_config_file,
    model_context_limit,
)

from .vllm_support import build_tokenizer_folder, write_adapter_config

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads((Path(__file__).parent / "vllm_0_32_0_signatures.json").read_text("utf-8"))
PROMPTS = [
    [{"role": "user", "content": "最近工作压力很大，晚上总是睡不着。"}],
    [{"role": "user", "content": "My doctor says I need to exercise more, but I have no time."}],
    [{"role": "user", "content": "考试快到了，我一点都不想复习。"}],
]


# -- part one: the stand-in is the release's surface ---------------------------------------------
def _same_default(snapshot_default: str | None, actual: object) -> bool:
    """A literal default must be equal; a non-literal one (``ModelConfig.x``, an enum) must exist."""
    if snapshot_default is None:
        return actual is inspect.Parameter.empty or actual is dataclasses.MISSING
    try:
        expected = ast.literal_eval(snapshot_default)
    except ValueError:
        return actual is not inspect.Parameter.empty and actual is not dataclasses.MISSING
    return actual == expected and type(actual) is type(expected)


def _parameters(function) -> list[tuple[str, str, object]]:
    return [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.name != "self"
    ]


def _fields(cls) -> list[tuple[str, object]]:
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((f.name, default))
    return rows


@pytest.mark.parametrize(
    "key, path",
    [
        ("LLM.__init__", ("entrypoints.llm", "LLM", "__init__")),
        ("LLM.generate", ("entrypoints.llm", "LLM", "generate")),
        ("RequestOutput.__init__", ("outputs", "RequestOutput", "__init__")),
        ("EngineCoreClient.shutdown", ("entrypoints.llm", "EngineCoreClient", "shutdown")),
    ],
)
def test_stand_in_signatures_are_the_releases(fake_vllm, key, path):
    module, cls, method = path
    function = getattr(getattr(sys.modules[f"vllm.{module}"], cls), method)
    actual = _parameters(function)
    expected = SNAPSHOT[key]
    assert [(name, kind) for name, kind, _ in actual] == [(name, kind) for name, kind, _ in expected]
    for (name, _, default), (_, _, snapshot_default) in zip(actual, expected, strict=True):
        assert _same_default(snapshot_default, default), (key, name, default, snapshot_default)


@pytest.mark.parametrize(
    "key, module, cls",
    [
        ("SamplingParams", "sampling_params", "SamplingParams"),
        ("LoRARequest", "lora.request", "LoRARequest"),
        ("CompletionOutput", "outputs", "CompletionOutput"),
    ],
)
def test_stand_in_fields_are_the_releases(fake_vllm, key, module, cls):
    actual = _fields(getattr(sys.modules[f"vllm.{module}"], cls))
    expected = SNAPSHOT[key]
    assert [name for name, _ in actual] == [name for name, _ in expected]
    for (name, default), (_, snapshot_default) in zip(actual, expected, strict=True):
        if snapshot_default is not None and snapshot_default.startswith("msgspec.field(default="):
            snapshot_default = snapshot_default.removeprefix("msgspec.field(default=").removesuffix(")")
        assert _same_default(snapshot_default, default), (key, name, default, snapshot_default)


def test_stand_in_constants_and_engine_are_the_releases(fake_vllm):
    from vllm.config.lora import MaxLoRARanks
    from vllm.entrypoints.llm import ENGINE_ARGS, LLMEngine
    from vllm.v1.engine import FINISH_REASON_STRINGS
    from vllm.v1.engine.exceptions import EngineDeadError

    assert SNAPSHOT["vllm_version"] == fake_vllm.__version__ == VLLM_VERSION
    assert list(get_args(MaxLoRARanks)) == SNAPSHOT["MaxLoRARanks"] == list(LORA_RANKS)
    assert list(FINISH_REASON_STRINGS) == SNAPSHOT["FINISH_REASON_STRINGS"]
    assert [base.__name__ for base in EngineDeadError.__bases__] == SNAPSHOT["EngineDeadError"]["bases"]
    assert EngineDeadError.__module__ == SNAPSHOT["EngineDeadError"]["module"]
    # What the backend reads from the engine exists on the release's LLMEngine.
    assert {"engine_core", "model_config"} <= set(SNAPSHOT["LLMEngine.attributes"])
    engine_attributes = set(vars(LLMEngine(model_config=None)))
    assert engine_attributes <= set(SNAPSHOT["LLMEngine.attributes"])
    # Every keyword the backend passes to LLM(...) is a named parameter or an EngineArgs field.
    named = {name for name, _, _ in SNAPSHOT["LLM.__init__"]}
    for keyword in ("enable_lora", "max_lora_rank", "max_loras", "max_model_len", "max_num_seqs"):
        assert keyword in ENGINE_ARGS and keyword not in named
    for keyword in (
        "model",
        "seed",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "dtype",
        "enforce_eager",
    ):
        assert keyword in named


def test_the_gpu_extra_pins_the_snapshot_release():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert f"vllm=={VLLM_VERSION}" in pyproject["project"]["optional-dependencies"]["gpu"]


def test_the_snapshot_script_reads_signatures_with_ast(tmp_path):
    """scripts/vllm_signatures.py on a miniature wheel: the same reading, checkable without the
    326 MB download."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import vllm_signatures
    finally:
        sys.path.remove(str(REPO / "scripts"))
    files = {
        "llm": "class LLM:\n    def __init__(self, model: str, *, seed: int = 0, **kwargs): ...\n"
        "    def generate(self, prompts, sampling_params=None, *, use_tqdm=True): ...\n",
        "engine_args": "class EngineArgs:\n    max_model_len: int = ModelConfig.max_model_len\n",
        "sampling_params": "class SamplingParams:\n    top_k: int = 0\n    _private: int = 1\n",
        "lora_request": "class LoRARequest:\n    lora_name: str\n    lora_int_id: int\n",
        "outputs": "class CompletionOutput:\n    text: str\nclass RequestOutput:\n"
        "    def __init__(self, request_id, outputs, **kwargs): ...\n",
        "llm_engine": "class LLMEngine:\n    def __init__(self):\n        self.engine_core = 1\n"
        "        self.model_config: int = 2\n",
        "core_client": "class EngineCoreClient:\n    def shutdown(self, timeout=None): ...\n",
        "lora_config": "MaxLoRARanks = Literal[1, 8]\n",
        "engine_init": "FINISH_REASON_STRINGS = ('stop', 'length')\n",
        "engine_exceptions": "class EngineDeadError(VLLMServerError): ...\n",
        "version": "__version__: str\n__version__ = version = '9.9.9'\n",
    }
    wheel = tmp_path / "vllm-9.9.9-x.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for key, text in files.items():
            archive.writestr(vllm_signatures.FILES[key], text)
    snap = vllm_signatures.snapshot(str(wheel))
    assert snap["vllm_version"] == "9.9.9"
    assert snap["LLM.__init__"] == [
        ["model", "POSITIONAL_OR_KEYWORD", None],
        ["seed", "KEYWORD_ONLY", "0"],
        ["kwargs", "VAR_KEYWORD", None],
    ]
    assert snap["LLM.generate"][2] == ["use_tqdm", "KEYWORD_ONLY", "True"]
    assert snap["EngineArgs"] == [["max_model_len", "ModelConfig.max_model_len"]]
    assert snap["SamplingParams"] == [["top_k", "0"]]
    assert snap["LoRARequest"] == [["lora_name", None], ["lora_int_id", None]]
    assert snap["LLMEngine.attributes"] == ["engine_core", "model_config"]
    assert snap["MaxLoRARanks"] == [1, 8]
    assert snap["EngineDeadError"]["bases"] == ["VLLMServerError"]


def test_stand_in_validates_sampling_params_like_the_release(fake_vllm):
    from vllm.exceptions import VLLMValidationError
    from vllm.lora.request import LoRARequest

    sampling = fake_vllm.SamplingParams(temperature=0.0, top_p=0.5, top_k=40, seed=-1, stop_token_ids=[2, 2])
    assert (sampling.top_p, sampling.top_k, sampling.seed, sampling.stop_token_ids) == (1.0, 0, None, [2])
    for bad in (
        {"top_k": -2},
        {"max_tokens": 0},
        {"temperature": 3.0},
        {"top_p": 0.0},
        {"stop_token_ids": ["x"]},
    ):
        with pytest.raises(VLLMValidationError):
            fake_vllm.SamplingParams(**bad)
    assert not issubclass(VLLMValidationError, ValueError)  # 0.32.0: not a ValueError
    with pytest.raises(ValueError, match="id must be > 0"):
        LoRARequest("a", 0, "/x")
    with pytest.raises(AssertionError, match="lora_path cannot be empty"):
        LoRARequest("a", 1)


# -- part two: the backend through the stand-in ---------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="the tokenizer needs transformers (pip install '.[cpu]')")
    return build_tokenizer_folder(tmp_path_factory.mktemp("vllm-model") / "tiny")


@pytest.fixture
def other_model_dir(model_dir, tmp_path) -> Path:
    """A second base model (a copy of the first under another path: another engine key)."""
    import shutil

    return Path(shutil.copytree(model_dir, tmp_path / "other"))


def vllm_spec(model_dir: Path, **fields) -> ModelSpec:
    fields.setdefault("params", GenerationParams(max_new_tokens=6))
    return ModelSpec(name=fields.pop("name", "v"), backend="vllm", base_model=str(model_dir), **fields)


def test_base_and_adapter_share_one_engine_built_with_the_documented_options(fake_vllm, model_dir, tmp_path):
    adapter = write_adapter_config(tmp_path / "adapter", rank=8)
    base = VLLMBackend(vllm_spec(model_dir, params=GenerationParams(max_new_tokens=6, seed=7)))
    tuned = VLLMBackend(
        vllm_spec(
            model_dir, name="t", adapter_path=str(adapter), params=GenerationParams(max_new_tokens=6, seed=7)
        )
    )
    first = base.generate(PROMPTS)
    with_adapter = tuned.generate(PROMPTS)
    again = tuned.generate(PROMPTS[:1])

    [llm] = fake_vllm.CONTROL.engines
    assert tuned.engine is base.engine
    assert llm.model == str(model_dir) and llm.seed == 7
    assert llm.gpu_memory_utilization == 0.85
    assert llm.kwargs == {
        "tensor_parallel_size": 1,
        "dtype": "auto",
        "enforce_eager": False,
        "trust_remote_code": False,
        "enable_lora": True,
        "max_lora_rank": 64,
        "max_loras": 4,
    }
    calls = fake_vllm.CONTROL.calls
    tokenizer = load_tokenizer(str(model_dir))
    assert calls[0]["prompts"] == [{"prompt_token_ids": encode_prompt(tokenizer, p, None)} for p in PROMPTS]
    assert calls[0]["use_tqdm"] is False and calls[0]["lora_request"] is None
    # One stable LoRA id per adapter path for the engine's lifetime.
    assert (calls[1]["lora_request"].lora_name, calls[1]["lora_request"].lora_int_id) == ("adapter_1", 1)
    assert calls[1]["lora_request"].lora_path == str(adapter)
    assert calls[2]["lora_request"].lora_int_id == 1
    sampling = calls[0]["sampling_params"]
    assert (sampling.temperature, sampling.top_p, sampling.top_k, sampling.max_tokens, sampling.seed) == (
        0.0,
        1.0,
        0,
        6,
        7,
    )
    assert sampling.stop_token_ids == stop_token_ids(tokenizer, None) and sampling.stop_token_ids

    for result, prompt in zip(first, PROMPTS, strict=True):
        assert result.ok and result.finish_reason in {"stop", "length"}
        assert result.prompt_tokens == base.count_prompt_tokens(prompt)
        assert 0 < result.completion_tokens <= 6
        assert result.text == result.text.strip() and "\ufffd" not in result.text
    assert all(r.text.startswith("[adapter_1]") for r in with_adapter + again)
    assert not any(r.text.startswith("[adapter_1]") for r in first)
    assert base.context_limit() == 1024  # the engine's max_model_len (config.json)


def test_sampling_options_and_finish_reasons(fake_vllm, model_dir):
    params = GenerationParams(temperature=0.7, top_p=0.9, top_k=40, max_new_tokens=3, repetition_penalty=1.1)
    backend = VLLMBackend(vllm_spec(model_dir, params=params, context_length=512))
    fake_vllm.CONTROL.abort_when = lambda ids: len(ids) == backend.count_prompt_tokens(PROMPTS[2])
    results = backend.generate(PROMPTS)
    sampling = fake_vllm.CONTROL.calls[0]["sampling_params"]
    assert (sampling.temperature, sampling.top_p, sampling.top_k, sampling.repetition_penalty) == (
        0.7,
        0.9,
        40,
        1.1,
    )
    assert fake_vllm.CONTROL.engines[0].kwargs["max_model_len"] == 512
    assert backend.context_limit() == 512
    # max_new_tokens 3 is below every reply's natural length: cut at "length", the broken
    # multi-byte tail removed.
    assert [r.finish_reason for r in results] == ["length", "length", "abort"]
    assert results[0].ok and results[0].completion_tokens == 3 and not results[0].text.endswith("\ufffd")
    assert results[2].error == "vLLM ended the request with finish_reason 'abort'"


def test_one_bad_prompt_fails_only_itself(fake_vllm, model_dir):
    backend = VLLMBackend(vllm_spec(model_dir, context_length=64, params=GenerationParams(max_new_tokens=8)))
    bad = backend.count_prompt_tokens(PROMPTS[1])
    fake_vllm.CONTROL.fail_when = lambda ids: len(ids) == bad
    too_long = [{"role": "user", "content": "压力 " * 200}]
    results = backend.generate([PROMPTS[0], PROMPTS[1], too_long, PROMPTS[2]])
    assert results[0].ok and results[3].ok
    assert results[1].error == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert "over the budget of 56" in results[2].error
    # The batch, then each generatable prompt alone; the too-long one never reached the engine.
    assert [len(call["prompts"]) for call in fake_vllm.CONTROL.calls] == [3, 1, 1, 1]
    assert backend.generate([too_long]) == [results[2]]


def test_a_dead_engine_is_evicted_and_reported_as_engine_dead(fake_vllm, model_dir):
    backend = VLLMBackend(vllm_spec(model_dir))
    assert backend.generate(PROMPTS[:1])[0].ok
    fake_vllm.CONTROL.die_on_call = 2
    with pytest.raises(EngineDead, match=r"the vLLM engine of .* died \(EngineCore encountered an issue"):
        backend.generate(PROMPTS)
    first = fake_vllm.CONTROL.engines[0]
    assert first.llm_engine.engine_core.is_shut_down and cached_engine_keys() == []
    fake_vllm.CONTROL.die_on_call = None
    assert backend.generate(PROMPTS)[0].ok  # a new engine
    assert len(fake_vllm.CONTROL.engines) == 2


def test_an_engine_dying_while_prompts_run_alone_is_engine_dead_too(fake_vllm, model_dir):
    backend = VLLMBackend(vllm_spec(model_dir))
    fake_vllm.CONTROL.fail_when = lambda ids: True  # the batch fails, then each prompt alone …
    fake_vllm.CONTROL.die_on_call = 3  # … and the core dies on the second of those
    with pytest.raises(EngineDead):
        backend.generate(PROMPTS)
    assert cached_engine_keys() == []


def test_two_base_models_in_turn_swap_engines_on_one_gpu(fake_vllm, model_dir, other_model_dir, monkeypatch):
    writer = VLLMBackend(vllm_spec(model_dir, name="writer"))
    judge = VLLMBackend(vllm_spec(other_model_dir, name="judge"))
    for _ in range(2):
        assert writer.generate(PROMPTS[:1])[0].ok
        assert judge.generate(PROMPTS[:1])[0].ok  # the stand-in refuses a 2nd live engine (free memory)
    engines = fake_vllm.CONTROL.engines
    assert [llm.model for llm in engines] == [str(model_dir), str(other_model_dir)] * 2
    assert [llm.llm_engine.engine_core.is_shut_down for llm in engines] == [True, True, True, False]
    assert cached_engine_keys() == [judge.engine_key()]

    # Two GPUs' worth (MI_MAX_GPU_ENGINES=2): both stay loaded, nothing is shut down.
    release_engines()
    monkeypatch.setenv("MI_MAX_GPU_ENGINES", "2")
    fake_vllm.CONTROL.gpu_slots = 2
    writer.generate(PROMPTS[:1])
    judge.generate(PROMPTS[:1])
    writer.generate(PROMPTS[:1])
    assert len(fake_vllm.CONTROL.live_engines()) == 2
    assert cached_engine_keys() == [judge.engine_key(), writer.engine_key()]  # least recently used first


def test_engine_options_are_checked_before_an_engine_starts(fake_vllm, model_dir, tmp_path):
    wide = write_adapter_config(tmp_path / "wide", rank=128)
    huge = write_adapter_config(tmp_path / "huge", rank=1024)
    cases = {
        "rank": (
            vllm_spec(model_dir, options={"max_lora_rank": 48}),
            "options['max_lora_rank'] is 48; vLLM 0.32.0 allows one of 1, 8, 16, 32, 64, 128, 256, 320, 512",
        ),
        "adapter": (
            vllm_spec(model_dir, adapter_path=str(wide)),
            f"the adapter {wide} has LoRA rank 128 (r in adapter_config.json), over max_lora_rank 64: "
            "set options['max_lora_rank'] to 128",
        ),
        "huge": (
            vllm_spec(model_dir, adapter_path=str(huge), options={"max_lora_rank": 512}),
            "vLLM serves LoRA ranks up to 512",
        ),
        "context": (
            vllm_spec(model_dir, context_length=4096),
            f"context_length 4096 is over the model's own limit of 1024 tokens (config.json of {model_dir}); "
            "vLLM refuses a max_model_len above it",
        ),
    }
    for spec, message in cases.values():
        backend = VLLMBackend(spec)
        assert any(message in problem for problem in backend.check())
        with pytest.raises(ValueError, match="vLLM|adapter|context_length") as refused:
            backend.generate(PROMPTS[:1])
        assert message in str(refused.value)
        with pytest.raises(ValueError) as at_load:
            backend.load_engine()
        assert message in str(at_load.value)
    assert fake_vllm.CONTROL.engines == []  # no engine was ever started
    # In range: an adapter of rank 128 with max_lora_rank 128 runs.
    fitting = VLLMBackend(vllm_spec(model_dir, adapter_path=str(wide), options={"max_lora_rank": 128}))
    assert fitting.option_problems() == [] and fitting.generate(PROMPTS[:1])[0].ok
    assert fake_vllm.CONTROL.engines[0].max_lora_rank == 128
    # LoRA off: no LoRA keywords at all, and the rank is not checked.
    plain = VLLMBackend(vllm_spec(model_dir, options={"enable_lora": False, "max_lora_rank": 48}))
    assert plain.option_problems() == []
    close_all()
    plain.generate(PROMPTS[:1])
    assert "max_lora_rank" not in fake_vllm.CONTROL.engines[-1].kwargs


def test_option_readers_handle_missing_and_cached_files(model_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants

    assert adapter_rank(str(tmp_path / "nowhere")) is None
    assert model_context_limit(str(tmp_path / "nowhere")) is None
    glm = tmp_path / "glm"
    glm.mkdir()
    (glm / "config.json").write_text(json.dumps({"seq_length": 8192}), "utf-8")
    assert model_context_limit(str(glm)) == 8192
    (glm / "config.json").write_text(json.dumps({"hidden_size": 8}), "utf-8")
    assert model_context_limit(str(glm)) is None
    # A hub id is read from the Hugging Face cache only, never fetched.
    cache = tmp_path / "hub"
    snapshot = cache / "models--kulaxiku--MI-LLM-GLM4_after_sft" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}), "utf-8")
    (cache / "models--kulaxiku--MI-LLM-GLM4_after_sft" / "refs").mkdir()
    (cache / "models--kulaxiku--MI-LLM-GLM4_after_sft" / "refs" / "main").write_text("abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert model_config_file("kulaxiku/MI-LLM-GLM4_after_sft") == snapshot / "config.json"
    assert model_context_limit("kulaxiku/MI-LLM-GLM4_after_sft") == 2048
    assert model_config_file("kulaxiku/not-downloaded") is None
    assert model_config_file("not a valid/repo//id") is None
    assert engine_option_problems("kulaxiku/MI-LLM-GLM4_after_sft", None, 4096, {})[0].startswith(
        "context_length 4096 is over the model's own limit of 2048"
    )


def test_engine_kwargs_reach_the_engine_and_unknown_ones_are_refused(fake_vllm, model_dir):
    tuned = VLLMBackend(vllm_spec(model_dir, options={"engine_kwargs": {"max_num_seqs": 64}}))
    assert tuned.generate(PROMPTS[:1])[0].ok
    assert fake_vllm.CONTROL.engines[0].kwargs["max_num_seqs"] == 64
    wrong = VLLMBackend(vllm_spec(model_dir, options={"engine_kwargs": {"max_num_sequences": 64}}))
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_num_sequences'"):
        wrong.generate(PROMPTS[:1])


def test_trust_remote_code_reaches_the_engine_and_the_tokenizer_only_when_turned_on(fake_vllm, model_dir, monkeypatch):
    import transformers

    seen: list[bool] = []
    real = transformers.AutoTokenizer.from_pretrained

    def spy(path, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(path, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", spy)
    from inference.backends.base import load_tokenizer

    release_engines()
    load_tokenizer.cache_clear()
    assert VLLMBackend(vllm_spec(model_dir)).generate(PROMPTS[:1])[0].ok
    assert fake_vllm.CONTROL.engines[-1].kwargs["trust_remote_code"] is False and seen == [False]
    release_engines()
    trusting = VLLMBackend(vllm_spec(model_dir, options={"trust_remote_code": True}))
    assert trusting.generate(PROMPTS[:1])[0].ok
    assert fake_vllm.CONTROL.engines[-1].kwargs["trust_remote_code"] is True and seen == [False, True]
    # Not the same engine: the option is part of the engine key.
    assert trusting.engine_key() != VLLMBackend(vllm_spec(model_dir)).engine_key()
    load_tokenizer.cache_clear()


def test_check_reports_library_gpu_and_lora_problems(fake_vllm, model_dir, tmp_path, monkeypatch):
    import torch

    adapter = write_adapter_config(tmp_path / "a", rank=8)
    spec = vllm_spec(model_dir, adapter_path=str(adapter), options={"enable_lora": False})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert VLLMBackend(spec).check() == [
        "no CUDA GPU is visible to this process (vLLM needs one)",
        "adapter_path is set but options['enable_lora'] is False",
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert VLLMBackend(vllm_spec(model_dir)).check() == []
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "vllm", None)
    assert VLLMBackend(vllm_spec(model_dir)).check() == [VLLM_MISSING, "torch is not installed"]
    with pytest.raises(BackendUnavailable, match=r"vLLM is not installed: pip install '\.\[gpu\]'"):
        VLLMBackend(vllm_spec(model_dir)).generate(PROMPTS)


def test_closing_an_engine_shuts_its_core_down_even_when_the_core_is_gone(fake_vllm, model_dir):
    backend = VLLMBackend(vllm_spec(model_dir))
    engine: VLLMEngine = backend.engine
    llm = engine.llm
    engine.close()
    assert llm.llm_engine.engine_core.is_shut_down and engine.llm is None
    fake_vllm.CONTROL.shutdown_error = RuntimeError("engine core process is gone")
    again = VLLMEngine(llm=llm, max_model_len=8)
    again.close()  # best effort: no exception
    assert again.llm is None
    backend.close()  # nothing per object
