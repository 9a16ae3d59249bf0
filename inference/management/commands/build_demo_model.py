"""``manage.py build_demo_model``: build the tiny local chat model (no downloads) from the demo dialogues."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEMO_DIALOGUES = Path(__file__).resolve().parents[3] / "annotation" / "demo_data" / "demo_dialogues.jsonl"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
# Beside the model: the fingerprint of the inputs it was built from (see ``inputs_fingerprint``).
FINGERPRINT_FILE = "demo_inputs.sha256"
DEFAULT_STEPS = 100


def default_model_dir() -> Path:
    return Path(settings.MI_MODEL_STORE) / "demo-tiny"


def read_demo_dialogues(path: Path = DEMO_DIALOGUES) -> list[list[tuple[str, str]]]:
    """The demo dialogues as (speaker, text) pairs.

    The file is the project's own JSONL: ``{"turns": [{"speaker", "text"}, ...]}`` per line.
    """
    corpus = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            turns = json.loads(line)["turns"]
            corpus.append([(str(t["speaker"]), str(t["text"])) for t in turns])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}, line {number}: field 'turns' must be a list of {{speaker, text}} ({error})"
            ) from None
    return corpus


def inputs_fingerprint(*, steps: int, seed: int, corpus_path: Path = DEMO_DIALOGUES) -> str:
    """SHA-256 of everything the built model depends on: the corpus file, the training steps and seed,
    the builder's source (architecture, tokenizer, template) and the transformers/torch versions that
    write the files. The same fingerprint beside a built model means it can be reused as it is."""
    from importlib.metadata import PackageNotFoundError, version

    from inference import demo_model

    digest = hashlib.sha256()
    digest.update(Path(corpus_path).read_bytes())
    digest.update(Path(demo_model.__file__).read_bytes())
    for package in ("transformers", "torch", "tokenizers"):
        try:
            digest.update(f"{package}={version(package)};".encode())
        except PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    digest.update(f"steps={steps};seed={seed}".encode())
    return digest.hexdigest()


def model_is_built(out: Path, fingerprint: str | None = None) -> bool:
    """The model files are all there (and, given a fingerprint, were built from those same inputs)."""
    if not all((out / name).exists() for name in MODEL_FILES):
        return False
    if fingerprint is None:
        return True
    stored = out / FINGERPRINT_FILE
    return stored.exists() and stored.read_text(encoding="utf-8").strip() == fingerprint


def ensure_demo_model(
    out: Path | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    force: bool = False,
    num_threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """Build the demo model into ``out`` unless a model built from the same inputs is there already
    (same fingerprint); return (folder, built now). ``progress(step, steps)`` follows the training.

    One torch thread by default: on a busy small machine it trains faster than two.
    """
    from inference.demo_model import build_demo_model

    out = Path(out or default_model_dir()).resolve()
    fingerprint = inputs_fingerprint(steps=steps, seed=seed)
    if model_is_built(out, fingerprint) and not force:
        return out, False
    (out / FINGERPRINT_FILE).unlink(missing_ok=True)  # a half-written rebuild must not look current
    build_demo_model(
        out, read_demo_dialogues(), steps=steps, seed=seed, num_threads=num_threads, progress=progress
    )
    (out / FINGERPRINT_FILE).write_text(fingerprint + "\n", encoding="utf-8")
    return out, True


class Command(BaseCommand):
    help = (
        "Build the tiny demo chat model under var/models/demo-tiny (skipped when a model built from the same "
        "inputs is there; --force rebuilds)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", type=Path, default=None, help="Output folder (default MI_MODEL_STORE/demo-tiny)."
        )
        parser.add_argument(
            "--steps", type=int, default=DEFAULT_STEPS, help=f"Training steps (default {DEFAULT_STEPS})."
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="Rebuild even if the folder holds a model.")

    def handle(self, *args, out=None, steps=DEFAULT_STEPS, seed=0, force=False, **options):
        if steps < 1:
            raise CommandError("--steps must be at least 1")
        try:
            folder, built = ensure_demo_model(out, steps=steps, seed=seed, force=force)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
        if built:
            record = json.loads((folder / "demo_build.json").read_text(encoding="utf-8"))
            self.stdout.write(self.style.SUCCESS(f"Built the demo model in {folder}: {record}"))
        else:
            self.stdout.write(f"The demo model is already in {folder} (use --force to rebuild).")
