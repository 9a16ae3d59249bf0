"""Every state change of the recipe: prompt versions, transformation jobs (start, claim, store, retry,
cancel), training exports and fine-tuning jobs (start, stop, and their life on the worker: claim,
log, steps, finish).

Atomic, with task enqueues only after commit, by task name. Transformation chunks follow the
generation runs' rules through the same claim kernel (:mod:`inference.claims`): a chunk claims its
items with one conditional UPDATE that gives them the task's token; results are written in one
transaction only to rows still holding that token, so a re-sent task claims nothing twice and a
killed worker's claim goes stale and is taken over. Accepted rewrites become dialogues through
annotation's own action (``annotation.actions.create_derived_dialogue``). The long compute (calling
a backend, training) lives in :mod:`inference.recipe.execute`; reads in :mod:`inference.recipe.queries`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, TextField, Value, prefetch_related_objects
from django.db.models.functions import Concat
from django.utils import timezone

from annotation.actions import create_derived_dialogue
from annotation.errors import ActionError
from annotation.models import Dialogue, Study
from inference import claims, registry
from inference.models import RegisteredModel

from . import export, finetune, judge, transform
from .models import (
    FineTuneJob,
    FineTuneStep,
    PromptTemplate,
    QualityScore,
    TransformationItem,
    TransformationJob,
)
from .queries import select_dialogues, turn_pairs

Item = TransformationItem
Job = TransformationJob
TRANSFORM_TASK = "inference.recipe.tasks.transform_chunk"
FINETUNE_TASK = "inference.recipe.tasks.finetune"

__all__ = [
    "ActionError",
    "TransformationOutcome",
    "append_finetune_log",
    "cancel_transformation",
    "claim_finetune",
    "claim_transformation_items",
    "default_prompt",
    "ensure_default_prompts",
    "export_training_data",
    "finish_finetune",
    "finish_transformation_if_complete",
    "record_finetune_step",
    "release_transformation_claims",
    "request_finetune_stop",
    "restart_finetune_at",
    "retry_transformation",
    "save_prompt_version",
    "start_finetune",
    "start_transformation",
    "store_transformation_results",
    "training_messages",
]

_DEFAULTS = {
    PromptTemplate.Kind.TRANSFORM: (
        transform.DEFAULT_PROMPT_NAME,
        transform.DEFAULT_PROMPT_VERSION,
        transform.DEFAULT_PROMPT_TEXT,
    ),
    PromptTemplate.Kind.JUDGE: (
        judge.DEFAULT_JUDGE_NAME,
        judge.DEFAULT_JUDGE_VERSION,
        judge.DEFAULT_JUDGE_TEXT,
    ),
}


# --- prompts ------------------------------------------------------------------------------------


def default_prompt(kind: str) -> PromptTemplate:
    """The shipped prompt of ``kind`` (transform | judge), created on first use (idempotent)."""
    name, version, text = _DEFAULTS[kind]
    prompt, _ = PromptTemplate.objects.get_or_create(
        name=name, version=version, defaults={"kind": kind, "text": text, "note": "shipped default"}
    )
    return prompt


def ensure_default_prompts() -> list[PromptTemplate]:
    return [default_prompt(kind) for kind in _DEFAULTS]


def save_prompt_version(
    name: str, text: str, kind: str, *, note: str = "", created_by=None
) -> PromptTemplate:
    """Save ``text`` as the next version of prompt ``name`` (version 1 for a new name).

    Old versions are never changed: outputs name the version that made them. Refuses a template
    without ``{dialogue}``, an unknown kind, or a name already used for the other kind.
    """
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise ActionError(f"Prompt name {name!r}: use letters, digits, '.', '-' or '_' (at most 100).")
    if kind not in PromptTemplate.Kind.values:
        raise ActionError(
            f"Prompt kind must be one of {', '.join(PromptTemplate.Kind.values)}, got {kind!r}."
        )
    problems = transform.check_template(text)
    if problems:
        raise ActionError(f"Prompt {name}: " + "; ".join(problems) + ".")
    with transaction.atomic():
        # Lock the name's versions so two editors saving at once get versions n+1 and n+2.
        existing = list(
            PromptTemplate.objects.select_for_update().filter(name=name).values_list("kind", flat=True)
        )
        if existing and existing[0] != kind:
            raise ActionError(
                f"Prompt {name} is a {existing[0]} prompt; pick another name for a {kind} prompt."
            )
        latest = PromptTemplate.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0
        return PromptTemplate.objects.create(
            name=name, version=latest + 1, kind=kind, text=text, note=note[:300], created_by=created_by
        )


# --- transformation jobs --------------------------------------------------------------------------


def _check_model(model: RegisteredModel, what: str) -> None:
    fatal = registry.fatal_messages(registry.problems_for(model, deep=False))
    if fatal:
        raise ActionError(f"Model '{model.name}' cannot {what}: " + "; ".join(fatal) + ".")


def start_transformation(
    study: Study,
    model: RegisteredModel,
    *,
    prompt: PromptTemplate | None = None,
    split: str | None = None,
    external_ids: Sequence[str] | None = None,
    output_split: str = "train",
    judge_model: RegisteredModel | None = None,
    judge_prompt: PromptTemplate | None = None,
    chunk_size: int = 4,
    max_new_tokens: int | None = None,
    created_by=None,
) -> TransformationJob:
    """Rewrite the chosen dialogues (a split and/or external ids) MI-style with ``model``.

    One item per source dialogue with at least one round; the new dialogues go to
    ``output_split`` as ``<source id>-mi-v<prompt version>`` (``-j<job>`` added if a dialogue of
    that name exists). With ``judge_model`` each accepted rewrite is also scored on the CPsyCoun
    rubric. ``max_new_tokens`` None: a quarter of the model's context, at most 2048
    (``registry.fitting_max_new_tokens``). Refuses (nothing created) an empty selection, a bad prompt,
    a model with fatal problems or a ``max_new_tokens`` that leaves the prompt no room in the context. Chunks are enqueued after commit on ``gpu`` when the writer or the judge
    is a vLLM model, else on ``cpu``.
    """
    if chunk_size < 1:
        raise ActionError(f"chunk_size must be at least 1, got {chunk_size}.")
    if max_new_tokens is None:
        max_new_tokens = registry.fitting_max_new_tokens(model)
    problem = registry.max_new_tokens_problem(model, max_new_tokens)
    if problem:
        raise ActionError(problem[0].upper() + problem[1:] + ".")
    if output_split not in Dialogue.Split.values:
        raise ActionError(
            f"Unknown output split '{output_split}'; use one of {', '.join(Dialogue.Split.values)}."
        )
    if not split and not external_ids:
        raise ActionError("Pick the dialogues to rewrite: a split or a list of dialogue ids.")
    prompt = prompt or default_prompt(PromptTemplate.Kind.TRANSFORM)
    if prompt.kind != PromptTemplate.Kind.TRANSFORM:
        raise ActionError(f"Prompt {prompt} is a {prompt.kind} prompt, not a rewrite prompt.")
    _check_model(model, "rewrite dialogues")
    if judge_model is not None:
        _check_model(judge_model, "judge dialogues")
        judge_prompt = judge_prompt or default_prompt(PromptTemplate.Kind.JUDGE)
        if judge_prompt.kind != PromptTemplate.Kind.JUDGE:
            raise ActionError(f"Prompt {judge_prompt} is a {judge_prompt.kind} prompt, not a judge prompt.")
    sources = list(select_dialogues(study, split=split, external_ids=external_ids))
    turns = turn_pairs(sources)
    usable = [d for d in sources if transform.source_rounds(turns.get(d.pk, []))]
    if not usable:
        raise ActionError(
            "None of the chosen dialogues has a round (a client turn answered by the counselor)."
        )
    with transaction.atomic():
        job = Job.objects.create(
            study=study,
            model=model,
            prompt=prompt,
            params=registry.params_snapshot(model),
            max_new_tokens=max_new_tokens,
            judge_model=judge_model,
            judge_prompt=judge_prompt if judge_model is not None else None,
            judge_params=registry.params_snapshot(judge_model) if judge_model is not None else {},
            selection={
                "split": split or "",
                "external_ids": list(external_ids or []),
                "dialogues": len(usable),
                "skipped_without_rounds": [d.external_id for d in sources if d not in usable][:100],
            },
            output_split=output_split,
            suffix=f"mi-v{prompt.version}",
            chunk_size=chunk_size,
            queue=_queue_for(model, judge_model),
            created_by=created_by,
        )
        names = [f"{d.external_id}-{job.suffix}" for d in usable]
        if Dialogue.objects.filter(study=study, external_id__in=names).exists():
            job.suffix = f"mi-v{prompt.version}-j{job.pk}"
            job.save(update_fields=["suffix"])
        Item.objects.bulk_create([Item(job=job, source=d) for d in usable], ignore_conflicts=True)
        ids = list(job.items.order_by("source_id").values_list("id", flat=True))
        _enqueue_after_commit(job, ids)
    return job


def _queue_for(model: RegisteredModel, judge_model: RegisteredModel | None) -> str:
    """``gpu`` when the writer or the judge runs on vLLM (both are called from the same chunk)."""
    queues = {registry.queue_for(model.backend)}
    if judge_model is not None:
        queues.add(registry.queue_for(judge_model.backend))
    return "gpu" if "gpu" in queues else "cpu"


def _enqueue_after_commit(job: Job, item_ids: Sequence[int]) -> None:
    """One chunk task per ``job.chunk_size`` items on the job's queue, sent by name after commit."""
    claims.send_after_commit(
        TRANSFORM_TASK, ([job.pk, chunk] for chunk in claims.chunked(item_ids, job.chunk_size)), queue=job.queue
    )


def claim_transformation_items(job: Job, item_ids: Sequence[int], token: str) -> list[Item]:
    """Claim the open items among ``item_ids`` (``inference.claims.claim``); return those now ours in
    source order (items already holding ``token`` — a redelivered task — included). Marks the job running."""
    now = timezone.now()
    mine = sorted(claims.claim(Item, item_ids, token, scope={"job": job}), key=lambda item: item.source_id)
    prefetch_related_objects(mine, "source")
    if mine:
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(status=Job.Status.RUNNING)
        Job.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
    return mine


def release_transformation_claims(token: str) -> int:
    """Give our unfinished claims back (before a retry), so nobody waits for them to go stale."""
    return claims.release(Item, token)


@dataclass
class TransformationOutcome:
    """What a chunk produced for one item.

    ``error`` set: the backend gave no output (the item fails). Otherwise ``check`` says whether
    ``raw_output`` was accepted; ``judge_raw``/``judge`` hold the judge's answer for an accepted one.
    """

    raw_output: str = ""
    error: str = ""
    check: transform.TransformOutcome | None = None
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    judge_raw: str | None = None
    judge: judge.JudgeOutcome | None = None
    judge_error: str = ""


_ITEM_FIELDS = [
    "status",
    "raw_output",
    "reason_code",
    "reason",
    "result",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "finished_at",
]


def _derived_metadata(job: Job, source: Dialogue) -> dict:
    return {
        "derived": {
            "kind": "mi-rewrite",
            "transformation_job": job.pk,
            "prompt": job.prompt.name,
            "prompt_version": job.prompt.version,
            "prompt_id": job.prompt_id,
            "model": job.model.name,
            "model_id": job.model_id,
            "source": source.external_id,
        }
    }


def _store_dialogue(job: Job, source: Dialogue, turns: Sequence[tuple[str, str]]) -> Dialogue:
    return create_derived_dialogue(
        job.study,
        source,
        external_id=f"{source.external_id}-{job.suffix}",
        split=job.output_split,
        turns=turns,
        metadata=_derived_metadata(job, source),
    )


def _store_score(job: Job, dialogue: Dialogue, outcome: TransformationOutcome) -> None:
    scores = outcome.judge.scores if outcome.judge is not None else None
    values = scores.as_dict() if scores is not None else {}
    error = outcome.judge_error or (
        outcome.judge.reason if outcome.judge is not None and not outcome.judge.ok else ""
    )
    QualityScore.objects.update_or_create(
        dialogue=dialogue,
        judge_model=job.judge_model,
        prompt=job.judge_prompt,
        defaults={
            "job": job,
            "raw_output": outcome.judge_raw or "",
            "error": error,
            **{
                name: values.get(name)
                for name in ("comprehensiveness", "professionalism", "authenticity", "safety", "total")
            },
        },
    )


def store_transformation_results(job: Job, token: str, outcomes: Mapping[int, TransformationOutcome]) -> int:
    """Write a chunk in one transaction, only to items still holding ``token``: accepted rewrites
    become derived dialogues (with their judge scores), rejections keep output and reason, backend
    errors fail the item. Returns the number of items written."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Item.objects.select_for_update()
            .filter(claims.held_by(Item, token), id__in=list(outcomes))
            .select_related("source")
            .order_by("id")
        )
        for row in rows:
            outcome = outcomes[row.pk]
            row.raw_output = outcome.raw_output
            row.finish_reason = (outcome.finish_reason or "")[:20]
            row.prompt_tokens, row.completion_tokens = outcome.prompt_tokens, outcome.completion_tokens
            row.latency_ms, row.finished_at, row.result = outcome.latency_ms, now, None
            if outcome.error:
                row.status, row.reason_code, row.reason = Item.Status.FAILED, "backend_error", outcome.error
            elif outcome.check is None or not outcome.check.ok:
                check = outcome.check or transform.TransformOutcome(False, code="empty", reason="no output")
                row.status, row.reason_code, row.reason = Item.Status.REJECTED, check.code, check.reason
            else:
                try:
                    with transaction.atomic():  # a savepoint: a name clash fails this item only
                        row.result = _store_dialogue(job, row.source, outcome.check.turns)
                        if job.judge_model_id:
                            _store_score(job, row.result, outcome)
                except IntegrityError as error:
                    row.result = None
                    row.status, row.reason_code = Item.Status.FAILED, "store_error"
                    row.reason = f"could not store {row.source.external_id}-{job.suffix}: {error}"
                else:
                    row.status, row.reason_code, row.reason = Item.Status.ACCEPTED, "ok", ""
        Item.objects.bulk_update(rows, _ITEM_FIELDS)
    return len(rows)


def finish_transformation_if_complete(job: Job | int) -> bool:
    """Mark the job done when no item is pending or claimed (a cancelled job stays cancelled)."""
    job_pk = job if isinstance(job, int) else job.pk
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_pk)
        if job.status in (Job.Status.DONE, Job.Status.CANCELLED):
            return False
        if Item.objects.filter(job=job, status__in=[Item.Status.PENDING, Item.Status.CLAIMED]).exists():
            return False
        job.status, job.finished_at = Job.Status.DONE, timezone.now()
        job.save(update_fields=["status", "finished_at"])
    return True


def retry_transformation(job: Job, item_ids: Sequence[int] | None = None) -> int:
    """Send rejected and failed items (all, or those in ``item_ids``) again; the job reopens.

    Their previous output and reason are cleared. Returns the number of items enqueued.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        qs = Item.objects.filter(job=job, status__in=[Item.Status.REJECTED, Item.Status.FAILED])
        if item_ids is not None:
            qs = qs.filter(id__in=item_ids)
        ids = list(qs.order_by("source_id").values_list("id", flat=True))
        if not ids:
            return 0
        Item.objects.filter(id__in=ids).update(
            status=Item.Status.PENDING,
            claim_token="",
            claimed_at=None,
            raw_output="",
            reason="",
            reason_code="",
        )
        job.status, job.finished_at, job.error = Job.Status.QUEUED, None, ""
        job.save(update_fields=["status", "finished_at", "error"])
        _enqueue_after_commit(job, ids)
    return len(ids)


def cancel_transformation(job: Job) -> bool:
    """Stop a queued or running job: chunks not yet started exit without work. False if finished."""
    changed = Job.objects.filter(pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return changed == 1


# --- training data --------------------------------------------------------------------------------


def training_messages(turns: Sequence[tuple[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    """A dialogue as one chat for SFT: the system prompt, then every round (user, assistant)."""
    from inference.prompts import build_rounds

    messages: list[dict[str, str]] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    for round_ in build_rounds(turns):
        messages.append({"role": "user", "content": round_.client})
        messages.append({"role": "assistant", "content": round_.counselor})
    return messages


def export_training_data(
    study: Study,
    directory: Path,
    *,
    split: str = "train",
    name: str = "mi",
    system_prompt: str | None = None,
    derived_only: bool = False,
    min_judge_total: int | None = None,
) -> export.ExportResult:
    """Write the split's dialogues as LLaMA-Factory ShareGPT + Alpaca files and dataset_info.json."""
    dialogues = list(
        select_dialogues(study, split=split, derived_only=derived_only, min_judge_total=min_judge_total)
    )
    if not dialogues:
        raise ActionError(
            f"Study '{study.slug}' has no dialogues to export in the '{split}' split with these filters."
        )
    turns = turn_pairs(dialogues)
    try:
        return export.write_export(
            Path(directory),
            (export.ExportDialogue(d.external_id, turns.get(d.pk, [])) for d in dialogues),
            name=name,
            system=system_prompt or None,
        )
    except ValueError as error:
        raise ActionError(str(error)) from None


# --- fine-tuning jobs ------------------------------------------------------------------------------


def _finetune_queue(queue: str | None) -> str:
    return queue or getattr(settings, "MI_FINETUNE_QUEUE", None) or "train"


def start_finetune(
    study: Study,
    base_model: RegisteredModel,
    *,
    output_name: str | None = None,
    split: str = "train",
    derived_only: bool = False,
    min_judge_total: int | None = None,
    hyperparameters: Mapping | None = None,
    system_prompt: str | None = None,
    queue: str | None = None,
    created_by=None,
) -> FineTuneJob:
    """Queue LoRA SFT of ``base_model`` on the study's ``split`` (optionally only derived dialogues
    and/or those judged at least ``min_judge_total``). The training set is fixed now.

    ``system_prompt`` defaults to the base model's, and the fine-tuned model is registered with it,
    so it is prompted at inference as it was trained. ``queue`` defaults to the setting
    ``MI_FINETUNE_QUEUE`` or ``train`` (a GPU worker of its own, so training never meets a loaded
    vLLM engine); pass ``cpu`` for the tiny demo model.
    """
    if base_model.backend == RegisteredModel.Backend.OPENAI:
        raise ActionError(
            f"Model '{base_model.name}' is served over HTTP: its weights are not here to train. "
            "Register the base model's folder with the transformers or vllm backend."
        )
    if base_model.adapter_path:
        raise ActionError(
            f"Model '{base_model.name}' is itself an adapter; fine-tune its base model instead."
        )
    _check_model(base_model, "be fine-tuned")
    try:
        params = finetune.LoraHyperparameters.from_dict(dict(hyperparameters or {}))
    except ValueError as error:
        raise ActionError(f"Hyperparameters: {error}.") from None
    name = (output_name or "").strip() or f"{base_model.name}-lora"
    dialogues = list(
        select_dialogues(study, split=split, derived_only=derived_only, min_judge_total=min_judge_total)
    )
    turns = turn_pairs(dialogues)
    usable = [d for d in dialogues if transform.source_rounds(turns.get(d.pk, []))]
    if not usable:
        raise ActionError(
            f"Study '{study.slug}' has no dialogue with a round in the '{split}' split with these filters."
        )
    digest = hashlib.sha256(
        "\n".join(sorted(d.content_hash or str(d.pk) for d in usable)).encode()
    ).hexdigest()
    with transaction.atomic():
        job = FineTuneJob.objects.create(
            study=study,
            base_model=base_model,
            output_name=name[:120],
            split=split,
            derived_only=derived_only,
            min_judge_total=min_judge_total,
            system_prompt=base_model.system_prompt if system_prompt is None else system_prompt,
            hyperparameters={**params.as_dict(), "training_set_sha256": digest},
            dialogue_ids=[d.pk for d in usable],
            dialogue_count=len(usable),
            queue=_finetune_queue(queue),
            created_by=created_by,
        )
        claims.send_after_commit(FINETUNE_TASK, [[job.pk]], queue=job.queue)
    return job


def request_finetune_stop(job: FineTuneJob) -> bool:
    """Stop a job: a queued one stops at once; a running one after its current step (the
    training loop reads the flag every step). False when it had already finished."""
    now = timezone.now()
    if FineTuneJob.objects.filter(pk=job.pk, status=FineTuneJob.Status.QUEUED).update(
        status=FineTuneJob.Status.STOPPED, stop_requested=True, finished_at=now
    ):
        job.refresh_from_db()
        return True
    changed = FineTuneJob.objects.filter(pk=job.pk, status=FineTuneJob.Status.RUNNING).update(
        stop_requested=True
    )
    job.refresh_from_db()
    return changed == 1


# --- a fine-tuning job's life on its worker (called by :func:`.execute.run_finetune`) ----------------


def claim_finetune(job_id: int, token: str) -> bool:
    """Take job ``job_id`` for the delivery ``token`` with one conditional UPDATE: a queued job, or a
    running one already holding ``token`` (the same task delivered again after its worker died).
    Any other delivery finds it taken (False)."""
    return bool(
        FineTuneJob.objects.filter(pk=job_id)
        .filter(Q(status=FineTuneJob.Status.QUEUED) | Q(status=FineTuneJob.Status.RUNNING, claim_token=token))
        .update(status=FineTuneJob.Status.RUNNING, claim_token=token, started_at=timezone.now(), current_step=0)
    )


def append_finetune_log(job_id: int, message: str) -> None:
    """Add a timestamped line to the job's log (an UPDATE, so a failed job keeps what it said)."""
    line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"
    FineTuneJob.objects.filter(pk=job_id).update(log=Concat(F("log"), Value(line), output_field=TextField()))


def restart_finetune_at(job_id: int, resumed_after: int) -> int:
    """Training (re)starts after step ``resumed_after``: steps a previous delivery logged past it are
    trained again, so they are dropped (the loss chart shows one curve). Returns how many were dropped."""
    dropped, _ = FineTuneStep.objects.filter(job_id=job_id, step__gt=resumed_after).delete()
    FineTuneJob.objects.filter(pk=job_id).update(current_step=resumed_after)
    return dropped


def record_finetune_step(job_id: int, entry: finetune.StepLog) -> bool:
    """Store one optimizer step's loss (idempotent per step) and the job's progress; return whether
    a stop was requested (the training loop stops after this step)."""
    FineTuneStep.objects.bulk_create(
        [
            FineTuneStep(
                job_id=job_id,
                step=entry.step,
                loss=entry.loss,
                learning_rate=entry.learning_rate,
                epoch=entry.epoch,
                elapsed_s=entry.elapsed_s,
            )
        ],
        ignore_conflicts=True,
    )
    FineTuneJob.objects.filter(pk=job_id).update(current_step=entry.step, total_steps=entry.total_steps)
    return FineTuneJob.objects.filter(pk=job_id, stop_requested=True).exists()


def finish_finetune(
    job_id: int, status: str, *, adapter_path: str = "", model: RegisteredModel | None = None, error: str = ""
) -> None:
    """Close the job: ``done`` (with the adapter and the registered model), ``stopped`` or ``failed``
    (with the error; its log and logged steps are kept)."""
    changes: dict[str, object] = {"status": status, "finished_at": timezone.now()}
    if status == FineTuneJob.Status.DONE:
        changes.update(adapter_path=adapter_path, result_model=model, error="")
    elif status == FineTuneJob.Status.FAILED:
        changes["error"] = error
    FineTuneJob.objects.filter(pk=job_id).update(**changes)
