"""The ``fake_vllm`` fixture: the test stand-in (``tests/inference/fake_vllm``) loaded as ``vllm``.

Every ``vllm`` module it loads is removed again afterwards, and every engine cached by the backends
is released, so no test sees another's stand-in or engines.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FAKE_DIR = Path(__file__).resolve().parent / "fake_vllm"


def _drop_vllm_modules() -> dict[str, object]:
    names = [name for name in sys.modules if name == "vllm" or name.startswith("vllm.")]
    return {name: sys.modules.pop(name) for name in names}


def load_fake_vllm(install=None):
    """Load the stand-in as ``vllm``; ``install(module)`` puts it on ``sys.modules`` (default: directly)."""
    spec = importlib.util.spec_from_file_location(
        "vllm", FAKE_DIR / "__init__.py", submodule_search_locations=[str(FAKE_DIR)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if install is None:
        sys.modules["vllm"] = module
    else:
        install(module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_vllm(monkeypatch):
    """The stand-in as ``vllm`` for one test. ``sys.modules["vllm"]`` is set through ``monkeypatch`` so
    that it is undone after anything the test itself patches there (monkeypatch undoes in reverse
    order, and it is torn down after this fixture: the autouse fixtures set it up first)."""
    from inference.backends import close_all

    close_all()
    saved = _drop_vllm_modules()
    module = load_fake_vllm(lambda m: monkeypatch.setitem(sys.modules, "vllm", m))
    try:
        yield module
    finally:
        close_all()
        _drop_vllm_modules()
        sys.modules.update({name: mod for name, mod in saved.items() if name != "vllm"})
        if "vllm" in saved:
            monkeypatch.setitem(sys.modules, "vllm", saved["vllm"])


def build_tokenizer_folder(out_dir: Path, max_position_embeddings: int = 1024) -> Path:
    """A model folder with only what the vLLM backend reads on this side: the demo tokenizer (with
    its chat template) and a ``config.json`` giving the context length. No weights: the stand-in
    engine needs none."""
    import json

    from inference.demo_model import (
        DEFAULT_SYSTEM_PROMPT,
        _train_tokenizer,
        _write_compat_metadata,
        read_corpus_jsonl,
        render_training_texts,
    )

    corpus = read_corpus_jsonl(Path(__file__).resolve().parents[1] / "fixtures" / "demo_corpus.jsonl")
    tokenizer = _train_tokenizer(render_training_texts(corpus, DEFAULT_SYSTEM_PROMPT), vocab_size=400)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    config = {"model_type": "llama", "max_position_embeddings": max_position_embeddings}
    (out_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _write_compat_metadata(out_dir)
    return out_dir


def write_adapter_config(out_dir: Path, rank: int) -> Path:
    """A PEFT adapter folder as far as the backend reads it (``adapter_config.json``)."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"]}
    (out_dir / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out_dir
