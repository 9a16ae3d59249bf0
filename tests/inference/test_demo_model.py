"""The tiny local demo model: built with no downloads, loadable by transformers, usable by the backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the demo model needs torch (pip install '.[ml]')")

from inference.backends import GenerationParams, ModelSpec  # noqa: E402
from inference.backends.transformers_backend import TransformersBackend  # noqa: E402
from inference.demo_model import (  # noqa: E402
    CHAT_TEMPLATE,
    build_demo_model,
    read_corpus_jsonl,
    render_training_texts,
)

CORPUS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "demo_corpus.jsonl"

PROMPTS = [
    [
        {"role": "system", "content": "你是一名心理咨询师。"},
        {"role": "user", "content": "最近工作压力很大，晚上总是睡不着。"},
    ],
    [{"role": "user", "content": "I know I should quit smoking, but I always fail."}],
    [
        {"role": "user", "content": "I keep forgetting to take my blood pressure pills."},
        {"role": "assistant", "content": "Remembering them every day has been a struggle for you."},
        {"role": "user", "content": "Yeah, and I'm worried about having a stroke like my dad."},
    ],
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    torch.set_num_threads(2)
    return build_demo_model(
        tmp_path_factory.mktemp("demo"), read_corpus_jsonl(CORPUS_FILE), steps=100, seed=0
    )


def test_build_writes_a_loadable_chat_model(demo_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in demo_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    tokenizer = AutoTokenizer.from_pretrained(demo_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.chat_template == CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好 hello"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\n你好 hello<|im_end|>\n<|im_start|>assistant\n"
    # Byte-level: Chinese never seen in the corpus still round-trips.
    text = "鬱金香 tulips 🌷"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    # The training text is the same rendering the tokenizer's own template produces.
    dialogue = [("client", "你好"), ("counselor", "Hello!")]
    [trained] = render_training_texts([dialogue], system_prompt="S")
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert trained == tokenizer.apply_chat_template(messages, tokenize=False)
    build = json.loads((demo_dir / "demo_build.json").read_text(encoding="utf-8"))
    assert build["dialogues"] == 8
    assert build["steps"] == 100


def test_backend_generates_from_the_demo_model_greedily_and_reproducibly(demo_dir):
    spec = ModelSpec(
        name="demo",
        backend="transformers",
        base_model=str(demo_dir),
        params=GenerationParams(temperature=0.0, max_new_tokens=48),
    )
    backend = TransformersBackend(spec)
    assert backend.check() == []
    first = backend.generate(PROMPTS)
    second = backend.generate(PROMPTS)
    assert [r.error for r in first] == [None, None, None]
    for result in first:
        assert result.text.strip() != ""
        assert result.finish_reason in {"stop", "length"}
        assert result.prompt_tokens > 0
        assert result.completion_tokens > 0
        assert result.latency_s > 0
    assert [r.text for r in first] == [r.text for r in second]
    assert [r.prompt_tokens for r in first] == [backend.count_prompt_tokens(p) for p in PROMPTS]
    assert backend.context_limit() == 1024


def test_sampling_with_a_seed_is_reproducible(demo_dir):
    params = GenerationParams(temperature=1.0, top_p=0.95, top_k=20, max_new_tokens=24, seed=7)
    spec = ModelSpec(name="demo-sampled", backend="transformers", base_model=str(demo_dir), params=params)
    backend = TransformersBackend(spec)
    first = backend.generate(PROMPTS)
    second = backend.generate(PROMPTS)
    assert [r.text for r in first] == [r.text for r in second]
    assert all(r.ok for r in first)


def test_build_is_deterministic_for_a_seed(tmp_path):
    corpus = read_corpus_jsonl(CORPUS_FILE)
    a = build_demo_model(tmp_path / "a", corpus, steps=3, seed=1)
    b = build_demo_model(tmp_path / "b", corpus, steps=3, seed=1)
    c = build_demo_model(tmp_path / "c", corpus, steps=3, seed=2)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_corpus_errors_name_the_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"turns": [["client", "hi"], ["counselor", "hello"]]}\n{"turns": "oops"}\n', encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: field 'turns' must be a list"):
        read_corpus_jsonl(bad)
    with pytest.raises(ValueError, match="no dialogue with at least one"):
        build_demo_model(tmp_path / "x", [[("client", "only a question")]], steps=1)
