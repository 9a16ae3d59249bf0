"""``manage.py build_demo_model``: build the tiny local chat model (no downloads) from the demo dialogues."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEMO_DIALOGUES = Path(__file__).resolve().parents[3] / "annotation" / "demo_data" / "demo_dialogues.jsonl"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")


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


def model_is_built(out: Path) -> bool:
    return all((out / name).exists() for name in MODEL_FILES)


def ensure_demo_model(
    out: Path | None = None, *, steps: int = 300, seed: int = 0, force: bool = False, num_threads: int = 2
) -> tuple[Path, bool]:
    """Build the demo model into ``out`` unless it is already there; return (folder, built now)."""
    from inference.demo_model import build_demo_model

    out = Path(out or default_model_dir()).resolve()
    if model_is_built(out) and not force:
        return out, False
    build_demo_model(out, read_demo_dialogues(), steps=steps, seed=seed, num_threads=num_threads)
    return out, True


class Command(BaseCommand):
    help = (
        "Build the tiny demo chat model under var/models/demo-tiny (skipped when present; --force rebuilds)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", type=Path, default=None, help="Output folder (default MI_MODEL_STORE/demo-tiny)."
        )
        parser.add_argument("--steps", type=int, default=300, help="Training steps (default 300).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="Rebuild even if the folder holds a model.")

    def handle(self, *args, out=None, steps=300, seed=0, force=False, **options):
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
