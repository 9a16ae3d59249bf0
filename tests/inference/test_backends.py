"""Generation backends: the registry, transformers (with a PEFT adapter), OpenAI-compatible HTTP, vLLM."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inference.backends import (
    BACKENDS,
    BackendUnavailable,
    GenerationParams,
    ModelSpec,
    close_all,
    get_backend,
)
from inference.backends.base import cut_reply_text
from inference.backends.openai_backend import OpenAIBackend, api_root, estimate_prompt_tokens
from inference.backends.transformers_backend import TransformersBackend
from inference.backends.vllm_backend import VLLM_MISSING, VLLMBackend

CORPUS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "demo_corpus.jsonl"

PROMPTS = [
    [{"role": "user", "content": "最近工作压力很大，晚上总是睡不着。"}],
    [{"role": "user", "content": "My doctor says I need to exercise more, but I have no time."}],
    [{"role": "user", "content": "考试快到了，我一点都不想复习。"}],
]


# -- registry ----------------------------------------------------------------------------------
def test_registry_names_every_backend_and_rejects_unknown_ones():
    assert BACKENDS == {"transformers": TransformersBackend, "openai": OpenAIBackend, "vllm": VLLMBackend}
    with pytest.raises(ValueError, match=r"model 'm': field 'backend' must be one of .* got 'tgi'"):
        get_backend(ModelSpec(name="m", backend="tgi", base_model="x"))


def test_get_backend_returns_one_object_per_spec():
    spec = ModelSpec(name="m", backend="openai", base_model="x", server_url="http://127.0.0.1:9")
    try:
        assert get_backend(spec) is get_backend(ModelSpec(**{**spec.__dict__}))
        other = ModelSpec(
            name="m", backend="openai", base_model="x", server_url="http://127.0.0.1:9", timeout=5
        )
        assert get_backend(other) is not get_backend(spec)
    finally:
        close_all()


def test_engine_key_ignores_the_adapter_so_adapters_share_the_base():
    base = ModelSpec(name="base", backend="transformers", base_model="/models/b")
    tuned = ModelSpec(
        name="tuned", backend="transformers", base_model="/models/b", adapter_path="/adapters/t"
    )
    other_template = ModelSpec(
        name="t", backend="transformers", base_model="/models/b", chat_template="{{ x }}"
    )
    on_gpu = ModelSpec(name="g", backend="transformers", base_model="/models/b", options={"device": "cuda"})
    key = TransformersBackend(base).engine_key()
    assert TransformersBackend(tuned).engine_key() == key
    assert TransformersBackend(other_template).engine_key() != key
    assert TransformersBackend(on_gpu).engine_key() != key
    assert VLLMBackend(base).engine_key() != key


# -- transformers ------------------------------------------------------------------------------
torch_available = True
try:
    import torch
except ImportError:  # pragma: no cover - the ml extra is part of the dev install
    torch_available = False
needs_torch = pytest.mark.skipif(not torch_available, reason="torch is not installed (pip install '.[ml]')")


def make_lora_adapter(model_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """A LoRA adapter on the demo model with random (non-zero) weights, so it changes outputs."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    if not torch_available:
        pytest.skip("torch is not installed (pip install '.[ml]')")
    from inference.demo_model import build_demo_model, read_corpus_jsonl

    torch.set_num_threads(2)
    return build_demo_model(tmp_path_factory.mktemp("demo"), read_corpus_jsonl(CORPUS_FILE), steps=60, seed=0)


@pytest.fixture(scope="module")
def adapter_dir(demo_dir, tmp_path_factory):
    return make_lora_adapter(demo_dir, tmp_path_factory.mktemp("adapter"))


@needs_torch
def test_lora_adapter_shares_the_base_engine_and_leaves_base_output_unchanged(demo_dir, adapter_dir):
    params = GenerationParams(max_new_tokens=16)
    base = TransformersBackend(
        ModelSpec(name="base", backend="transformers", base_model=str(demo_dir), params=params)
    )
    tuned = TransformersBackend(
        ModelSpec(
            name="tuned",
            backend="transformers",
            base_model=str(demo_dir),
            adapter_path=str(adapter_dir),
            params=params,
        )
    )
    try:
        before = base.generate(PROMPTS)
        assert tuned.check() == []
        with_adapter = tuned.generate(PROMPTS)
        after = base.generate(PROMPTS)
        assert tuned.engine is base.engine
        assert list(base.engine.adapters) == [str(adapter_dir)]
        assert all(r.ok for r in before + with_adapter + after)
        assert [r.text for r in after] == [r.text for r in before]
        assert [(r.text, r.completion_tokens) for r in with_adapter] != [
            (r.text, r.completion_tokens) for r in before
        ]
    finally:
        close_all()


@needs_torch
def test_bad_items_fail_alone(demo_dir):
    # A template that refuses one prompt, and a context so small that a long prompt is over budget.
    template = (
        "{%- if messages[-1]['content'] == 'boom' %}{{ raise_exception('no boom here') }}{%- endif %}"
        "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
        "{%- endfor %}{{ '<|im_start|>assistant\\n' }}"
    )
    spec = ModelSpec(
        name="small",
        backend="transformers",
        base_model=str(demo_dir),
        chat_template=template,
        context_length=80,
        params=GenerationParams(max_new_tokens=20),
    )
    backend = TransformersBackend(spec)
    assert backend.prompt_budget() == 60
    long_prompt = [{"role": "user", "content": "压力 " * 200}]
    results = backend.generate([PROMPTS[0], [{"role": "user", "content": "boom"}], long_prompt, PROMPTS[1]])
    assert [r.ok for r in results] == [True, False, False, True]
    assert "chat template failed: no boom here" in results[1].error
    assert results[2].error.startswith(f"prompt has {results[2].prompt_tokens} tokens, over the budget of 60")
    assert results[2].prompt_tokens > 60
    assert results[1].finish_reason is None


@needs_torch
def test_length_finish_reason_when_max_new_tokens_is_reached(demo_dir):
    spec = ModelSpec(
        name="short",
        backend="transformers",
        base_model=str(demo_dir),
        params=GenerationParams(max_new_tokens=2),
    )
    results = TransformersBackend(spec).generate(PROMPTS)
    assert "length" in [r.finish_reason for r in results]
    for result in results:
        assert "\ufffd" not in result.text  # a cut inside a multi-byte character leaves no debris
        if result.finish_reason == "length":
            assert result.completion_tokens == 2
        else:
            assert (result.finish_reason, result.completion_tokens <= 2) == ("stop", True)


def test_a_reply_cut_at_max_new_tokens_loses_a_half_character_but_a_stopped_one_is_kept():
    assert cut_reply_text(" 你好，我想\ufffd", "length") == "你好，我想"
    assert cut_reply_text("cut here \ufffd\ufffd", "length") == "cut here"
    assert cut_reply_text("kept \ufffd", "stop") == "kept \ufffd"  # the model wrote it: not ours to drop
    assert cut_reply_text("  plain  ", None) == "plain"


@needs_torch
def test_check_reports_missing_paths_and_missing_chat_template(demo_dir, tmp_path):
    missing = TransformersBackend(
        ModelSpec(name="m", backend="transformers", base_model=str(tmp_path / "nope"))
    )
    assert missing.check() == [f"base_model path {tmp_path / 'nope'} does not exist"]

    no_adapter = ModelSpec(
        name="m", backend="transformers", base_model=str(demo_dir), adapter_path=str(tmp_path / "gone")
    )
    assert TransformersBackend(no_adapter).check() == [f"adapter_path {tmp_path / 'gone'} does not exist"]

    bare = tmp_path / "bare"
    shutil.copytree(demo_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    no_template = TransformersBackend(ModelSpec(name="m", backend="transformers", base_model=str(bare)))
    assert no_template.check() == [
        f"the tokenizer of {bare} has no chat template and the model sets no chat_template override"
    ]
    override = ModelSpec(
        name="m", backend="transformers", base_model=str(bare), chat_template="{{ messages }}"
    )
    assert TransformersBackend(override).check() == []


# -- OpenAI-compatible HTTP ----------------------------------------------------------------------
class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1 whose behaviour depends on the last user message:
    ``flaky`` answers 500 once then succeeds, ``bad`` 400, ``busy`` always 503, ``slow`` sleeps."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "served-model", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/tokenize":
                    self._send(200, {"count": 42, "tokens": []})
                    return
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    content = body["messages"][-1]["content"]
                    server.seen[content] = server.seen.get(content, 0) + 1
                    attempt = server.seen[content]
                if content == "flaky" and attempt == 1:
                    self._send(500, {"error": {"message": "engine hiccup"}})
                elif content == "bad":
                    self._send(400, {"error": {"message": "max_tokens is too large"}})
                elif content == "busy":
                    self._send(503, {"error": {"message": "overloaded"}})
                else:
                    if content == "slow":
                        time.sleep(1.0)
                    self._send(
                        200,
                        {
                            "choices": [
                                {
                                    "message": {"role": "assistant", "content": f" reply to {content} "},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 11, "completion_tokens": 4},
                        },
                    )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that timed out hangs up
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def fake_server():
    server = FakeServer()
    yield server
    server.stop()


def http_spec(url: str, **changes) -> ModelSpec:
    values = dict(
        name="remote",
        backend="openai",
        base_model="served-model",
        server_url=url,
        api_key="secret-token",
        timeout=0.5,
        max_concurrency=4,
        params=GenerationParams(max_new_tokens=32, seed=3),
        options={"backoff_s": 0.01, "max_attempts": 3},
    )
    values.update(changes)
    return ModelSpec(**values)


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "be kind"}, {"role": "user", "content": text}]


def test_openai_success_retry_client_error_and_timeout_in_one_batch(fake_server):
    backend = OpenAIBackend(http_spec(fake_server.url))
    try:
        results = backend.generate([user("hello"), user("flaky"), user("bad"), user("slow")])
    finally:
        backend.close()
    ok, flaky, bad, slow = results
    assert (ok.text, ok.finish_reason, ok.prompt_tokens, ok.completion_tokens, ok.error) == (
        "reply to hello",
        "stop",
        11,
        4,
        None,
    )
    assert (flaky.text, flaky.error) == ("reply to flaky", None)
    assert fake_server.seen["flaky"] == 2  # one 500, one retry
    assert bad.error == "HTTP 400: max_tokens is too large"
    assert fake_server.seen["bad"] == 1  # a 4xx is not retried
    assert slow.error == "request timed out after 0.5s"
    assert fake_server.seen["slow"] == 1  # a read timeout is not re-sent
    sent = fake_server.requests[0]
    assert sent["model"] == "served-model"
    assert sent["messages"] == user(sent["messages"][-1]["content"])
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["seed"]) == (0.0, 1.0, 32, 3)
    assert "top_k" not in sent and "repetition_penalty" not in sent and "chat_template" not in sent
    assert fake_server.headers[0]["Authorization"] == "Bearer secret-token"


def test_openai_gives_up_after_max_attempts_on_5xx_and_connection_errors(fake_server):
    backend = OpenAIBackend(http_spec(fake_server.url))
    try:
        [busy] = backend.generate([user("busy")])
    finally:
        backend.close()
    assert busy.error == "gave up after 3 attempts; last: HTTP 503: overloaded"
    assert fake_server.seen["busy"] == 3

    fake_server.stop()  # nothing listens on the port any more
    down = OpenAIBackend(http_spec(fake_server.url))
    try:
        [result] = down.generate([user("hello")])
        problems = down.check()
    finally:
        down.close()
    assert result.error.startswith("gave up after 3 attempts; last: connection error: ConnectError")
    assert problems[0].startswith(f"server {fake_server.url} is unreachable: ConnectError")


def test_openai_sends_vllm_extensions_only_when_set(fake_server):
    params = GenerationParams(temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1, max_new_tokens=8)
    backend = OpenAIBackend(http_spec(fake_server.url, params=params, chat_template="{{ messages }}"))
    try:
        backend.generate([user("hello")])
    finally:
        backend.close()
    sent = fake_server.requests[0]
    assert (sent["temperature"], sent["top_p"], sent["top_k"], sent["repetition_penalty"]) == (
        0.7,
        0.9,
        40,
        1.1,
    )
    assert sent["chat_template"] == "{{ messages }}"
    assert "seed" not in sent


def test_openai_check_and_token_counting(fake_server):
    backend = OpenAIBackend(http_spec(fake_server.url + "/v1/"))
    unknown = OpenAIBackend(http_spec(fake_server.url, base_model="other", adapter_path="/a"))
    try:
        assert backend.check() == []
        assert backend.count_prompt_tokens(user("hello")) == 42  # the server's /tokenize
        problems = unknown.check()
    finally:
        backend.close()
        unknown.close()
    assert problems[0].startswith("adapter_path is not used by the openai backend")
    assert problems[1] == f"model 'other' is not served by {fake_server.url} (served: ['served-model'])"
    assert api_root("http://h:8000") == api_root("http://h:8000/v1/") == "http://h:8000/v1"
    # No tokenizer, no server: the estimate (bytes / 3, rounded up, + 5 per message, + 3).
    assert estimate_prompt_tokens([{"role": "user", "content": "你好"}]) == 2 + 5 + 3
    assert OpenAIBackend(http_spec(None)).generate([user("x")])[0].error == "server_url is not set"


# -- vLLM ----------------------------------------------------------------------------------------
def test_vllm_backend_explains_how_to_install_it_when_missing():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here; the missing-library path cannot be exercised")
    backend = VLLMBackend(ModelSpec(name="v", backend="vllm", base_model="/models/b"))
    assert VLLM_MISSING in backend.check()
    with pytest.raises(BackendUnavailable, match=r"vLLM is not installed: pip install '\.\[gpu\]'"):
        backend.generate(PROMPTS)


@pytest.mark.gpu
def test_vllm_generates_with_base_and_lora_on_one_engine(demo_dir, adapter_dir):
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install '.[gpu]')")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    options = {"gpu_memory_utilization": 0.3, "enforce_eager": True, "max_lora_rank": 8}
    params = GenerationParams(max_new_tokens=24)
    base = VLLMBackend(
        ModelSpec(name="base", backend="vllm", base_model=str(demo_dir), params=params, options=options)
    )
    tuned = VLLMBackend(
        ModelSpec(
            name="tuned",
            backend="vllm",
            base_model=str(demo_dir),
            adapter_path=str(adapter_dir),
            params=params,
            options=options,
        )
    )
    try:
        assert base.check() == []
        first = base.generate(PROMPTS)
        second = base.generate(PROMPTS)
        with_adapter = tuned.generate(PROMPTS)
        assert tuned.engine is base.engine
        for result in first + with_adapter:
            assert result.error is None
            assert result.finish_reason in {"stop", "length"}
            assert result.prompt_tokens > 0 and result.completion_tokens > 0
        assert [r.text for r in first] == [r.text for r in second]
        assert [r.prompt_tokens for r in first] == [base.count_prompt_tokens(p) for p in PROMPTS]
        assert [r.text for r in with_adapter] != [r.text for r in first]
        too_long = [{"role": "user", "content": "压力 " * 2000}]
        results = base.generate([PROMPTS[0], too_long])
        assert results[0].ok and not results[1].ok
        assert "over the budget" in results[1].error
    finally:
        close_all()
