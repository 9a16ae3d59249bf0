"""LoRA supervised fine-tuning with transformers + peft, loss on the counselor turns only.

No Django: plain data in (chat message lists), an adapter folder out. torch, transformers and
peft are imported inside the functions, so importing this module is cheap for the web process.

* Each training dialogue is one example: the messages rendered with the model's own chat
  template; labels are the tokens of the assistant (counselor) turns — content and the template's
  end-of-turn marker — and -100 everywhere else (system, user turns, role headers). So the model
  learns every counselor turn of a multi-turn dialogue given its gold history, as LLaMA-Factory's
  multi-turn SFT does.
* Defaults follow LLaMA-Factory's LoRA SFT example: rank 8, alpha 16, dropout 0, all linear
  layers, lr 1e-4, 3 epochs, batch 1 x 8 accumulation, cosine schedule, warmup 10 %, cutoff 2048.
* ``on_step`` is called after every optimizer step with the loss; it returns True to stop (the
  job's stop flag). A stopped run saves nothing.
* With a ``checkpoint_dir``, every ``checkpoint_every`` optimizer steps the run writes
  ``checkpoint.pt`` there (atomically: a temporary file in the same folder, then ``os.replace``):
  the trainable (LoRA) weights, optimizer and scheduler state, the step, the micro-batches consumed,
  the losses so far and the torch/python RNG states, with a fingerprint of what decides the run
  (base model, hyperparameters, chat template, training dialogues). A later call with the same
  folder and the same fingerprint continues from the step after the checkpoint, replaying the
  seeded batch order up to where it stopped; a checkpoint whose fingerprint differs is ignored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class LoraHyperparameters:
    """Everything that decides the trained adapter; recorded in the model's provenance.

    ``lora_target``: ``"all"`` (every linear layer but the output head, peft's ``all-linear``) or
    comma-separated module names (``"q_proj,v_proj"``). ``max_steps`` (optional) caps optimizer
    steps regardless of epochs. ``device``: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"``.
    """

    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target: str = "all"
    learning_rate: float = 1e-4
    num_epochs: float = 3.0
    batch_size: int = 1
    gradient_accumulation_steps: int = 8
    cutoff_len: int = 2048
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"

    def problems(self) -> list[str]:
        """Invalid values as sentences naming the field (empty list: valid)."""
        out = []
        for name in ("lora_rank", "lora_alpha", "batch_size", "gradient_accumulation_steps", "cutoff_len"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.lora_dropout < 1:
            out.append(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.learning_rate > 0:
            out.append(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.num_epochs > 0:
            out.append(f"num_epochs must be positive, got {self.num_epochs}")
        if not 0 <= self.warmup_ratio < 1:
            out.append(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps is not None and self.max_steps < 1:
            out.append(f"max_steps must be at least 1 when set, got {self.max_steps}")
        if self.lr_scheduler not in ("cosine", "linear", "constant", "constant_with_warmup"):
            out.append(
                f"lr_scheduler must be cosine, linear, constant or constant_with_warmup, got {self.lr_scheduler!r}"
            )
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            out.append(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        if not self.lora_target.strip():
            out.append("lora_target must be 'all' or module names")
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LoraHyperparameters:
        """Build from a mapping (form, JSON, CLI), converting types; ValueError names the field."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        defaults = cls()
        for name, value in values.items():
            if value is None or value == "":
                continue
            default = getattr(defaults, name)
            kind = type(default) if default is not None else int  # max_steps
            try:
                converted[name] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"hyperparameter {name}: expected {kind.__name__}, got {value!r}") from None
        params = cls(**converted)
        problems = params.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return params


@dataclass(frozen=True)
class StepLog:
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    epoch: float
    elapsed_s: float


@dataclass
class TrainResult:
    """``status`` is ``"done"`` (adapter saved in ``adapter_dir``) or ``"stopped"`` (nothing saved)."""

    status: str
    steps: int
    total_steps: int
    losses: list[float] = field(default_factory=list)
    adapter_dir: Path | None = None
    examples: int = 0
    skipped: int = 0
    truncated: int = 0
    supervised_tokens: int = 0
    seconds: float = 0.0


def _render(
    tokenizer: Any, messages: Sequence[Message], chat_template: str | None, generation_prompt: bool
) -> str:
    text: str = tokenizer.apply_chat_template(
        [dict(m) for m in messages],
        chat_template=chat_template,
        tokenize=False,
        add_generation_prompt=generation_prompt,
    )
    return text


def tokenize_dialogue(
    tokenizer: Any, messages: Sequence[Message], cutoff_len: int, chat_template: str | None = None
) -> tuple[list[int], list[int], bool]:
    """``(input_ids, labels, truncated)`` for one chat, labels -100 outside assistant turns.

    The rendered text is cut at the boundaries of each assistant turn — where the template's
    generation prompt ends and where that turn's rendering ends — and each piece is encoded on its
    own (special tokens are written by the template, so none are added). That is exactly how a
    prompt is encoded at generation time, so the model learns to continue the same token ids.
    Raises ValueError when the template does not render a conversation as a prefix-extension of
    its earlier turns (then turn boundaries cannot be found from the text).
    """
    full = _render(tokenizer, messages, chat_template, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for position, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        start_text = _render(tokenizer, messages[:position], chat_template, generation_prompt=True)
        end_text = _render(tokenizer, messages[: position + 1], chat_template, generation_prompt=False)
        if not (full.startswith(end_text) and end_text.startswith(start_text)):
            raise ValueError(
                f"message {position}: the chat template does not render earlier turns as a prefix of "
                "later ones, so the counselor turn cannot be located for loss masking"
            )
        spans.append((len(start_text), len(end_text)))
    input_ids: list[int] = []
    labels: list[int] = []
    cursor = 0
    for start, end in spans:
        for piece, supervised in ((full[cursor:start], False), (full[start:end], True)):
            if piece:
                ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                input_ids.extend(ids)
                labels.extend(ids if supervised else [-100] * len(ids))
        cursor = end
    if cursor < len(full):
        ids = tokenizer(full[cursor:], add_special_tokens=False)["input_ids"]
        input_ids.extend(ids)
        labels.extend([-100] * len(ids))
    truncated = len(input_ids) > cutoff_len
    return input_ids[:cutoff_len], labels[:cutoff_len], truncated


def all_linear_modules(model: Any) -> list[str]:
    """Short names of every linear layer but the output head (``q_proj``, ..., ``down_proj``).

    Short names, as LLaMA-Factory writes them, rather than peft's resolved full paths: vLLM and
    other LoRA loaders match adapters by these names.
    """
    import torch

    output = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not output
    }
    names.discard("lm_head")
    return sorted(names)


CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def run_fingerprint(
    base_model: str,
    dialogues: Sequence[Sequence[Message]],
    params: LoraHyperparameters,
    chat_template: str | None,
) -> dict[str, Any]:
    """What must be equal for a checkpoint to be continued: any difference means another run."""
    data = json.dumps([[dict(m) for m in d] for d in dialogues], ensure_ascii=False, sort_keys=True)
    return {
        "format": CHECKPOINT_FORMAT,
        "base_model": base_model,
        "hyperparameters": params.as_dict(),
        "chat_template_sha256": hashlib.sha256((chat_template or "").encode("utf-8")).hexdigest(),
        "dialogues_sha256": hashlib.sha256(data.encode("utf-8")).hexdigest(),
    }


def _fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        if key == "hyperparameters" and isinstance(saved.get(key), Mapping):
            old, new = saved[key], current[key]
            names = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
            if names:
                out.append(f"hyperparameters ({', '.join(names)})")
        elif saved.get(key) != current.get(key):
            out.append(key)
    return out


def _load_checkpoint(
    path: Path, fingerprint: Mapping[str, Any], say: Callable[[str], None]
) -> dict[str, Any] | None:
    """The checkpoint's contents when it belongs to this run, else None (and a log line saying why)."""
    import torch

    if not path.exists():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - an unreadable checkpoint only costs the progress
        say(f"checkpoint ignored: {path} could not be read ({type(error).__name__}: {error})")
        return None
    differences = _fingerprint_differences(state.get("fingerprint") or {}, fingerprint)
    if differences:
        say(f"checkpoint ignored: {', '.join(differences)} differ from this run's")
        return None
    return state


def _save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader sees the old checkpoint or the new one."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(dict(state), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _python_rng_state(saved: Any) -> tuple[Any, ...]:
    # torch.load gives back the tuple random.getstate() made, possibly with lists inside.
    version, internal, gauss = saved
    return (version, tuple(internal), gauss)


def train_lora(
    base_model: str,
    dialogues: Sequence[Sequence[Message]],
    out_dir: Path,
    params: LoraHyperparameters,
    *,
    chat_template: str | None = None,
    on_step: Callable[[StepLog], bool] | None = None,
    log: Callable[[str], None] | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 50,
    on_start: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``dialogues`` (chat message lists ending with an assistant turn)
    and save it to ``out_dir`` (``adapter_config.json``, ``adapter_model.safetensors``,
    ``training_log.json``). ``on_step`` gets every step's loss and returns True to stop.

    ``checkpoint_dir``: where a checkpoint is written every ``checkpoint_every`` steps and read at
    the start (see the module's docstring). ``on_start`` is called once before the first step with
    the step training resumes after (0 for a fresh start), so a caller can drop what it logged for
    later steps. The folder is left as it is; the caller removes it when the run is over."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    problems = params.problems()
    if checkpoint_every < 1:
        problems.append(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    if problems:
        raise ValueError("; ".join(problems))
    say = log or (lambda _message: None)
    started = time.perf_counter()
    random.seed(params.seed)
    torch.manual_seed(params.seed)

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples: list[tuple[list[int], list[int]]] = []
    skipped = truncated = 0
    for number, messages in enumerate(dialogues):
        try:
            ids, labels, was_cut = tokenize_dialogue(tokenizer, messages, params.cutoff_len, chat_template)
        except ValueError as error:
            raise ValueError(f"training dialogue {number}: {error}") from None
        truncated += was_cut
        if all(label == -100 for label in labels):
            skipped += 1  # nothing to learn: the cutoff removed every counselor token
            continue
        examples.append((ids, labels))
    if not examples:
        raise ValueError(
            f"no training example has a counselor token within cutoff_len={params.cutoff_len} "
            f"({len(dialogues)} dialogues given)"
        )
    supervised = sum(sum(1 for label in labels if label != -100) for _, labels in examples)
    say(
        f"{len(examples)} examples ({skipped} skipped, {truncated} truncated), {supervised} supervised tokens"
    )

    device = _pick_device(params.device)
    dtype = torch.float32
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    # transformers declares PreTrainedModel.to through functools.wraps(torch.nn.Module.to), a type
    # mypy cannot bind to the instance.
    base.to(device)  # type: ignore[arg-type]
    if params.lora_target == "all":
        target = all_linear_modules(base)
    else:
        target = [t.strip() for t in params.lora_target.split(",") if t.strip()]
    config = LoraConfig(
        r=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=target,
        task_type="CAUSAL_LM",
        bias="none",
    )
    model = get_peft_model(base, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"device {device}, dtype {str(dtype).removeprefix('torch.')}, {trainable} trainable parameters")

    batches_per_epoch = math.ceil(len(examples) / params.batch_size)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / params.gradient_accumulation_steps))
    total_steps = params.max_steps or max(1, math.ceil(steps_per_epoch * params.num_epochs))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=params.learning_rate, weight_decay=0.0
    )
    scheduler = get_scheduler(
        params.lr_scheduler,
        optimizer,
        num_warmup_steps=int(total_steps * params.warmup_ratio),
        num_training_steps=total_steps,
    )

    order = random.Random(params.seed)

    def micro_batches() -> Iterator[tuple[int, list[tuple[list[int], list[int]]]]]:
        # Reshuffled every epoch with a seeded generator: a rerun sees the same batches.
        epoch = 0
        while True:
            indices = list(range(len(examples)))
            order.shuffle(indices)
            for start in range(0, len(indices), params.batch_size):
                yield epoch, [examples[i] for i in indices[start : start + params.batch_size]]
            epoch += 1

    def collate(batch: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(labs)] = torch.tensor(labs)
            mask[row, : len(ids)] = 1
        return input_ids.to(device), labels.to(device), mask.to(device)

    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    fingerprint = run_fingerprint(base_model, dialogues, params, chat_template)
    trainable_names = [name for name, p in model.named_parameters() if p.requires_grad]
    model.train()
    stream = micro_batches()
    losses: list[float] = []
    micro_done = 0
    first_step = 1
    state = _load_checkpoint(checkpoint_path, fingerprint, say) if checkpoint_path is not None else None
    if state is not None:
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name in trainable_names:
                parameters[name].copy_(state["adapter"][name])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for _ in range(state["micro_done"]):  # the seeded order, replayed up to where it stopped
            next(stream)
        micro_done = state["micro_done"]
        losses = list(state["losses"])
        first_step = state["step"] + 1
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(_python_rng_state(state["python_rng"]))
        say(f"resumed from step {state['step']} (checkpoint in {checkpoint_dir})")
        del state
    if on_start is not None:
        on_start(first_step - 1)
    for step in range(first_step, total_steps + 1):
        step_loss = 0.0
        for _ in range(params.gradient_accumulation_steps):
            epoch, batch = next(stream)
            input_ids, label_ids, mask = collate(batch)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss
            (loss / params.gradient_accumulation_steps).backward()
            step_loss += float(loss.detach()) / params.gradient_accumulation_steps
            micro_done += 1
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
        learning_rate = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        entry = StepLog(
            step=step,
            total_steps=total_steps,
            loss=step_loss,
            learning_rate=learning_rate,
            epoch=round(micro_done / batches_per_epoch, 4),
            elapsed_s=round(time.perf_counter() - started, 3),
        )
        if on_step is not None and on_step(entry):
            say(f"stop requested after step {step}; no adapter saved")
            return TrainResult(
                status="stopped",
                steps=step,
                total_steps=total_steps,
                losses=losses,
                examples=len(examples),
                skipped=skipped,
                truncated=truncated,
                supervised_tokens=supervised,
                seconds=time.perf_counter() - started,
            )
        if checkpoint_path is not None and step % checkpoint_every == 0 and step < total_steps:
            _save_checkpoint(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "step": step,
                    "micro_done": micro_done,
                    "losses": list(losses),
                    "adapter": {
                        name: p.detach().to("cpu").clone()
                        for name, p in model.named_parameters()
                        if p.requires_grad
                    },
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "python_rng": random.getstate(),
                },
            )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)  # peft's signature says str
    seconds = time.perf_counter() - started
    record = {
        "base_model": base_model,
        "hyperparameters": params.as_dict(),
        "examples": len(examples),
        "skipped": skipped,
        "truncated": truncated,
        "supervised_tokens": supervised,
        "total_steps": total_steps,
        "losses": [round(v, 6) for v in losses],
        "seconds": round(seconds, 2),
    }
    (out_dir / "training_log.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    say(f"adapter saved to {out_dir} after {total_steps} steps in {seconds:.1f}s")
    return TrainResult(
        status="done",
        steps=total_steps,
        total_steps=total_steps,
        losses=losses,
        adapter_dir=out_dir,
        examples=len(examples),
        skipped=skipped,
        truncated=truncated,
        supervised_tokens=supervised,
        seconds=seconds,
    )
