"""The reference protocol as a template: actions that set up (and later finish) a reference study.

The reference study compared three released MI-LLMs on 40 test dialogues held out of 2,040 MI-style
rewritten dialogues (2,000 train / 40 test): each model answered every round of every test dialogue
with the gold history before it, and MI experts coded the generated and the reference transcripts
with MITI 4.2.1. :func:`create_reference_study` does the setup in one step (study, corpus, seeded
split, reference transcripts, the three models on vLLM, one round-based run per model);
:func:`create_reference_coding_round` is the follow-up once the runs are done (a separate step,
run by ``create_reference_study SLUG --coding-round``: it needs every run finished, which takes
hours on a GPU worker). Both are re-runnable: what exists is reused, nothing is created twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from annotation import actions as annotation_actions
from annotation.errors import ActionError
from annotation.models import Dialogue, Study, TranscriptSource

from . import actions
from .models import GenerationRun, RegisteredModel

REFERENCE_MODELS = (
    "kulaxiku/MI-LLM-Baichuan2_after_sft",
    "kulaxiku/MI-LLM-GLM4_after_sft",
    "kulaxiku/MI-LLM-LLama3-Chinese_after_sft",
)
N_TRAIN, N_TEST = 2000, 40
ROUND_NAME = "Reference comparison"
CHANGE_GOAL = "The change the client in each dialogue is working towards (as in the corpus)."


@dataclass
class ReferenceStudy:
    study: Study
    imported: int = 0
    split: dict[str, int] = field(default_factory=dict)
    models: list[RegisteredModel] = field(default_factory=list)
    runs: list[GenerationRun] = field(default_factory=list)
    started: list[GenerationRun] = field(default_factory=list)


def model_name(base_model: str) -> str:
    """A registered model's name for a hub id or a folder: its last path part."""
    return Path(base_model.rstrip("/")).name or base_model


@transaction.atomic
def create_reference_study(
    slug: str,
    *,
    corpus: str,
    fmt: str | None = None,
    models: Sequence[str] = REFERENCE_MODELS,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    seed: int = 0,
    chunk_size: int = 40,
    max_new_tokens: int = 256,
    start_runs: bool = True,
    trust_remote_code: bool = False,
    created_by=None,
) -> ReferenceStudy:
    """Set up the reference protocol in study ``slug`` (created if missing).

    Imports ``corpus`` (any supported format; only into a study with no dialogues yet), splits it
    randomly with ``seed`` into ``n_train``/``n_test`` (the study records the seed), creates the
    reference transcripts of the test split, registers each of ``models`` (hub ids or local folders)
    with the vLLM backend — greedy, seed 0, ``max_new_tokens`` — and starts one round-based run per
    model over the test split (skipped for a model that already has a live or finished run there).
    Runs are queued on ``gpu`` after commit. All or nothing: :class:`ActionError` (e.g. a corpus
    smaller than the split) leaves no study, dialogues or models behind.
    """
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        study = annotation_actions.create_study(
            name=f"MI-LLM reference study ({slug})", slug=slug, change_goal=CHANGE_GOAL, created_by=created_by
        )
    result = ReferenceStudy(study=study)
    if not Dialogue.objects.filter(study=study).exists():
        batch = annotation_actions.import_dialogues(study, path=corpus, fmt=fmt, created_by=created_by)
        result.imported = batch.dialogue_count
    if not study.split_info or study.split_info.get("seed") != seed or study.split_info.get("n_test") != n_test:
        result.split = annotation_actions.split_randomly(study, n_test=n_test, n_train=n_train, seed=seed)
    else:
        result.split = dict(study.split_info.get("counts") or {})
    annotation_actions.ensure_reference_source(study)
    for base_model in models:
        name = model_name(base_model)
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            model = actions.register_model(
                name=name,
                backend=RegisteredModel.Backend.VLLM,
                base_model=base_model,
                temperature=0.0,
                seed=0,
                max_new_tokens=max_new_tokens,
                # Baichuan2's tokenizer and weights load only with their repository's own code.
                engine_options={"trust_remote_code": True} if trust_remote_code else {},
                created_by=created_by,
            )
        result.models.append(model)
        if not start_runs:
            continue
        existing = (
            GenerationRun.objects.filter(study=study, model=model, split=Dialogue.Split.TEST)
            .exclude(status__in=[GenerationRun.Status.CANCELLED])
            .order_by("-id")
            .first()
        )
        if existing is None:
            existing = actions.start_run(study, model, split="test", chunk_size=chunk_size, created_by=created_by)
            result.started.append(existing)
        result.runs.append(existing)
    return result


def create_reference_coding_round(
    study: Study,
    *,
    coders: Sequence,
    models: Sequence[str] = REFERENCE_MODELS,
    overlap: float = 0.2,
    seed: int | None = None,
    created_by=None,
):
    """The coding round comparing each model's generated transcripts with the reference ones.

    Needs the latest test-split run of every model done (or finished with failed items) and handed
    over as transcripts; otherwise :class:`ActionError` says which run is not there yet.
    """
    sources = [annotation_actions.ensure_reference_source(study)]
    waiting = []
    for base_model in models:
        name = model_name(base_model)
        run = (
            GenerationRun.objects.filter(study=study, model__name=name, split=Dialogue.Split.TEST)
            .exclude(status=GenerationRun.Status.CANCELLED)
            .order_by("-id")
            .first()
        )
        if run is None:
            waiting.append(f"{name} has no run in this study")
        elif run.source_id is None:
            waiting.append(f"run {run.pk} of {name} is {run.status}")
        else:
            sources.append(TranscriptSource.objects.get(pk=run.source_id))
    if waiting:
        raise ActionError(
            "The reference coding round needs every model's run done first: " + "; ".join(waiting) + "."
        )
    return annotation_actions.create_coding_round(
        study, name=ROUND_NAME, sources=sources, coders=coders, overlap=overlap, seed=seed, created_by=created_by
    )
