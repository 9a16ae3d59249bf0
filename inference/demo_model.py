"""Build a tiny chat model locally, with no downloads, so the whole platform runs on a laptop.

:func:`build_demo_model` trains a byte-level BPE tokenizer on the given dialogues (byte-level, so
any Chinese or English text encodes without unknown tokens), gives it a ChatML chat template
(``<|im_start|>role\\n...<|im_end|>``, eos = ``<|im_end|>``), creates a small ``LlamaForCausalLM``
and trains it briefly on the dialogues rendered with that template, so that its replies look like
the corpus (they are not meant to be good). The result is saved with ``save_pretrained``
(safetensors) and loads with ``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained`` and vLLM.

Deterministic for a given corpus and seed on one machine: the tokenizer trainer is fed the texts
in corpus order, torch is seeded, and training uses a fixed number of CPU threads.

CLI: ``python -m inference.demo_model OUT_DIR --corpus dialogues.jsonl [--steps N] [--seed S]``
where each JSONL line is ``{"turns": [[speaker, text], ...]}`` or a bare ``[[speaker, text], ...]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from inference.prompts import build_messages, build_rounds

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
DEFAULT_SYSTEM_PROMPT = (
    "You are a counselor who uses motivational interviewing. 你是一名使用动机式访谈的心理咨询师。"
)

Dialogue = Sequence[tuple[str, str]]


def render_training_texts(corpus: Sequence[Dialogue], system_prompt: str | None) -> list[str]:
    """Each dialogue as one ChatML text: system prompt, then every round (client, counselor).

    Rounds are formed exactly as at inference (:func:`inference.prompts.build_rounds`), so the
    model is trained on the same shape of prompt it will be asked to continue.
    """
    from jinja2 import Environment

    template = Environment().from_string(CHAT_TEMPLATE)
    texts = []
    for number, dialogue in enumerate(corpus):
        try:
            rounds = build_rounds(dialogue)
        except ValueError as error:
            raise ValueError(f"corpus dialogue {number}: {error}") from None
        if not rounds:
            continue
        messages = build_messages(rounds, len(rounds) - 1, system_prompt=system_prompt)
        messages.append({"role": "assistant", "content": rounds[-1].counselor})
        texts.append(template.render(messages=messages, add_generation_prompt=False))
    if not texts:
        raise ValueError("corpus has no dialogue with at least one (client, counselor) round")
    return texts


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD_TOKEN, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        additional_special_tokens=[IM_START],
        model_max_length=1024,
        padding_side="left",
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def _write_compat_metadata(out_dir: Path) -> None:
    """Add the pre-v5 spellings of the saved metadata, so older transformers (as pinned by a vLLM
    install on a GPU worker) load the same folder: the tokenizer class under its v4 name, the
    chat template inside tokenizer_config.json, ``additional_special_tokens`` as a list,
    ``torch_dtype`` and a flat ``rope_theta``. transformers v5 reads these spellings too."""
    tokenizer_config_path = out_dir / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_config_path.read_text(encoding="utf-8"))
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tokenizer_config["chat_template"] = CHAT_TEMPLATE
    extra = tokenizer_config.pop("extra_special_tokens", None) or [IM_START]
    tokenizer_config["additional_special_tokens"] = list(extra)
    tokenizer_config_path.write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.setdefault("torch_dtype", config.get("dtype", "float32"))
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config.setdefault("rope_theta", rope["rope_theta"])
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def build_demo_model(
    out_dir: Path,
    corpus: Sequence[Dialogue],
    steps: int = 100,
    seed: int = 0,
    *,
    vocab_size: int = 3000,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    block_size: int = 128,
    batch_size: int = 8,
    num_threads: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Train and save the tiny demo chat model into ``out_dir``; return ``out_dir``.

    ``corpus`` is a list of dialogues, each a sequence of ``(speaker, text)`` turns (speaker
    client | counselor | system). ``steps`` optimizer steps of ``batch_size`` random windows of
    ``block_size`` tokens. ``num_threads`` bounds torch's CPU threads during the build (restored
    afterwards). ``progress(step, steps)`` is called after every optimizer step (the demo prints a
    step counter with it). Writes ``config.json``, ``model.safetensors``, ``generation_config.json`` and the
    tokenizer files (with the chat template); also ``demo_build.json`` recording the inputs.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    started = time.perf_counter()
    out_dir = Path(out_dir)
    texts = render_training_texts(corpus, system_prompt)
    tokenizer = _train_tokenizer(texts, vocab_size)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        torch.manual_seed(seed)
        eos_id = tokenizer.convert_tokens_to_ids(IM_END)
        pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=384,
            num_hidden_layers=2,
            # head_dim 32: a size every vLLM attention backend supports.
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=1024,
            bos_token_id=None,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config)
        ids = [i for text in texts for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
        data = torch.tensor(ids, dtype=torch.long)
        window = min(block_size, len(ids))
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
        model.train()
        loss_value = float("nan")
        for step in range(steps):
            # Short linear warmup then constant: enough for a model this small to pick up the
            # template and frequent phrases in a few hundred steps.
            for group in optimizer.param_groups:
                group["lr"] = 3e-3 * min(1.0, (step + 1) / 20)
            starts = torch.randint(0, len(ids) - window + 1, (batch_size,), generator=generator)
            batch = torch.stack([data[s : s + window] for s in starts.tolist()])
            # The model shifts labels itself: loss on every next token of the window.
            output = model(input_ids=batch, labels=batch)
            output.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = float(output.loss.detach())
            if progress is not None:
                progress(step + 1, steps)
        model.eval()
        model.generation_config = GenerationConfig(
            eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False, max_new_tokens=64
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        # No "Writing model shards" progress bar in the demo's output: the caller reports progress.
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(out_dir, safe_serialization=True)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        tokenizer.save_pretrained(out_dir)
        _write_compat_metadata(out_dir)
    finally:
        torch.set_num_threads(previous_threads)

    record = {
        "dialogues": len(texts),
        "training_tokens": len(ids),
        "vocab_size": len(tokenizer),
        "steps": steps,
        "seed": seed,
        "final_loss": round(loss_value, 4),
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / "demo_build.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out_dir


def read_corpus_jsonl(path: Path) -> list[list[tuple[str, str]]]:
    """Read dialogues from JSONL: ``{"turns": [[speaker, text], ...]}`` or a bare list per line."""
    corpus = []
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {line_number}: invalid JSON ({error.msg})") from None
        turns = record.get("turns") if isinstance(record, dict) else record
        if not isinstance(turns, list) or not all(isinstance(t, list) and len(t) == 2 for t in turns):
            raise ValueError(
                f"{path}, line {line_number}: field 'turns' must be a list of [speaker, text] pairs"
            )
        corpus.append([(str(speaker), str(text)) for speaker, text in turns])
    return corpus


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the tiny local demo chat model.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--corpus", type=Path, required=True, help="JSONL of dialogues")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = build_demo_model(args.out_dir, read_corpus_jsonl(args.corpus), steps=args.steps, seed=args.seed)
    print(json.loads((out / "demo_build.json").read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
