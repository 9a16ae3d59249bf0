"""The long compute of the recipe, called by its Celery tasks (and by commands with ``--here``):
one transformation chunk through a backend, and one fine-tuning job.

State changes go through :mod:`inference.recipe.actions` (claim, store, log, finish); this module
builds prompts, calls the backend or the trainer, and turns what comes back into outcomes to store.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from annotation.models import Dialogue
from inference import actions as inference_actions
from inference import claims, registry
from inference.backends import get_backend, release_engines
from inference.backends.base import cached_engine_keys, free_gpu_memory
from inference.chunks import ChunkSteps, run_claimed_chunk

from . import actions, finetune, judge, transform
from .models import FineTuneJob, TransformationItem, TransformationJob
from .queries import turn_pairs

log = logging.getLogger(__name__)

Outcome = actions.TransformationOutcome


# --- transformation chunks --------------------------------------------------------------------------


def execute_transform_chunk(
    task, job_id: int, item_ids: list[int], claim_token: str | None = None
) -> dict[str, Any]:
    """The body of the ``transform_chunk`` task; ``task`` is None when called directly (commands, tests)."""
    job = TransformationJob.objects.select_related("prompt", "judge_prompt").filter(pk=job_id).first()
    if job is None:
        return {"job": job_id, "claimed": 0, "skipped": "no such job"}
    if job.status in (TransformationJob.Status.CANCELLED, TransformationJob.Status.DONE):
        return {"job": job_id, "claimed": 0, "skipped": job.status}
    token = claim_token or (getattr(getattr(task, "request", None), "id", None) or claims.new_claim_token())
    steps = ChunkSteps(
        claim=lambda token: actions.claim_transformation_items(job, item_ids, token),
        foreign_wait=lambda token: claims.seconds_until_foreign_claims_go_stale(TransformationItem, item_ids, token),
        compute=lambda items: transformation_outcomes(job, items),
        store=lambda token, outcomes: actions.store_transformation_results(job, token, outcomes),
        release=actions.release_transformation_claims,
        finish=lambda: actions.finish_transformation_if_complete(job),
    )
    result = run_claimed_chunk(task, token, steps)
    if not result.items:
        return {"job": job_id, "claimed": 0}
    accepted = sum(1 for o in result.outcomes.values() if o.check is not None and o.check.ok and not o.error)
    return {"job": job_id, "claimed": len(result.items), "written": result.written, "accepted": accepted}


def transformation_outcomes(
    job: TransformationJob, items: Sequence[TransformationItem]
) -> dict[int, Outcome]:
    """Rewrite the chunk's source dialogues in one backend call, check each output, and (when the job
    has a judge) score the accepted ones in a second call. One outcome per item."""
    outcomes: dict[int, Outcome] = {}
    try:
        backend = get_backend(registry.spec_from_snapshot(job.params, max_new_tokens=job.max_new_tokens))
        budget = backend.prompt_budget()
    except Exception as error:  # noqa: BLE001 - a backend that cannot start fails the chunk, visibly
        message = f"backend could not start: {type(error).__name__}: {error}"
        return {item.pk: Outcome(error=message) for item in items}
    no_room = backend.budget_error()
    if no_room is not None:  # not "over the budget of -1024" on every item: the reason, once per item
        return {item.pk: Outcome(error=no_room) for item in items}

    turns = turn_pairs([item.source for item in items])
    sources: dict[int, list[tuple[str, str]]] = {}
    batch: list[list[dict[str, str]]] = []
    batch_items: list[TransformationItem] = []
    for item in items:
        source = transform.source_rounds(turns.get(item.source_id, []))
        sources[item.pk] = source
        try:
            messages = transform.build_transform_messages(job.prompt.text, source)
            if budget is not None:
                count = backend.count_prompt_tokens(messages)
                if count > budget:
                    outcomes[item.pk] = Outcome(
                        prompt_tokens=count,
                        error=f"prompt too long: {count} tokens, over the budget of {budget} (context "
                        f"{backend.context_limit()} minus max_new_tokens {job.max_new_tokens})",
                    )
                    continue
        except Exception as error:  # noqa: BLE001 - one bad prompt fails only its item
            outcomes[item.pk] = Outcome(error=f"prompt could not be built: {error}")
            continue
        batch.append(messages)
        batch_items.append(item)
    if batch:
        try:
            results = backend.generate(batch)
        except Exception as error:  # noqa: BLE001 - e.g. out of memory: the chunk fails, visibly
            results = None
            for item in batch_items:
                outcomes[item.pk] = Outcome(error=f"{type(error).__name__}: {error}")
        for item, result in zip(batch_items, results or [], strict=False):
            outcome = Outcome(
                raw_output=result.text,
                error=result.error or "",
                finish_reason=result.finish_reason or "",
                prompt_tokens=result.prompt_tokens or None,
                completion_tokens=result.completion_tokens if result.ok else None,
                latency_ms=round(result.latency_s * 1000, 3),
            )
            if result.ok:
                outcome.check = transform.validate_transform_output(result.text, sources[item.pk])
            outcomes[item.pk] = outcome
    if job.judge_model_id:
        _judge(job, [o for o in outcomes.values() if o.check is not None and o.check.ok])
    return outcomes


def _judge(job: TransformationJob, accepted: list[Outcome]) -> None:
    if not accepted:
        return
    try:
        backend = get_backend(registry.spec_from_snapshot(job.judge_params))
        results = backend.generate(
            [judge.build_judge_messages(job.judge_prompt.text, o.check.turns) for o in accepted]
        )
    except Exception as error:  # noqa: BLE001 - a judge failure never rejects a valid rewrite
        for outcome in accepted:
            outcome.judge_error = f"judge failed: {type(error).__name__}: {error}"
        return
    for outcome, result in zip(accepted, results, strict=True):
        outcome.judge_raw = result.text
        if result.ok:
            outcome.judge = judge.parse_judge_output(result.text)
        else:
            outcome.judge_error = f"judge failed: {result.error}"


# --- fine-tuning --------------------------------------------------------------------------------------


# Optimizer steps between checkpoints of a running job (what a redelivery can lose at most).
CHECKPOINT_EVERY = 50


def adapter_dir(job: FineTuneJob) -> Path:
    return Path(settings.MI_MODEL_STORE) / f"finetune-{job.pk}"


def checkpoint_dir(job: FineTuneJob) -> Path:
    """Next to the adapter folder; removed when the job is done or stopped."""
    return Path(settings.MI_MODEL_STORE) / f"finetune-{job.pk}.checkpoint"


def run_finetune(job_id: int, token: str) -> str:
    """Train job ``job_id`` if this delivery can claim it; return the job's final status.

    Claimed with one conditional UPDATE: a queued job, or a running one holding ``token`` (the
    same task delivered again after its worker died). A redelivery continues from the job's last
    checkpoint (every :data:`CHECKPOINT_EVERY` steps, in :func:`checkpoint_dir`) when it matches
    the job's training run, else starts over; logged steps after the point it continues from are
    dropped, so the loss chart shows one curve. The checkpoint folder is removed when the job is
    done or stopped (neither can run again); a failed job keeps it. Anything that goes wrong marks
    the job failed with the error; its log and logged steps are kept.
    """
    if not actions.claim_finetune(job_id, token):
        status = FineTuneJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return status or "missing"
    job = FineTuneJob.objects.select_related("base_model", "study").get(pk=job_id)
    base = job.base_model
    checkpoints = checkpoint_dir(job)
    try:
        chats = _training_chats(job)
        hyper = {k: v for k, v in job.hyperparameters.items() if k != "training_set_sha256"}
        params = finetune.LoraHyperparameters.from_dict(hyper)
        actions.append_finetune_log(job.pk, f"training {base.name} on {len(chats)} dialogues of split '{job.split}'")

        def on_start(resumed_after: int) -> None:
            if actions.restart_finetune_at(job.pk, resumed_after) and not resumed_after:
                actions.append_finetune_log(job.pk, "restarting: this job's previous worker stopped before it finished")

        def on_step(entry: finetune.StepLog) -> bool:
            return actions.record_finetune_step(job.pk, entry)

        # A GPU holds a loaded engine or a training, not both: a vLLM engine keeps its share of the
        # memory for its lifetime, so this worker's engines are shut down first, and torch's cached
        # blocks are handed back afterwards so that an engine started next passes vLLM's free-memory
        # check. (The default queue, ``train``, has a worker of its own; this covers a job sent to
        # ``gpu``.)
        loaded = len(cached_engine_keys())
        release_engines()
        if loaded:
            actions.append_finetune_log(job.pk, f"released {loaded} loaded engine(s) before training")
        try:
            result = finetune.train_lora(
                base.base_model,
                chats,
                adapter_dir(job),
                params,
                chat_template=base.chat_template or None,
                on_step=on_step,
                log=lambda message: actions.append_finetune_log(job.pk, message),
                checkpoint_dir=checkpoints,
                checkpoint_every=CHECKPOINT_EVERY,
                on_start=on_start,
            )
        finally:
            free_gpu_memory()
        shutil.rmtree(checkpoints, ignore_errors=True)
        if result.status == "stopped":
            actions.finish_finetune(job.pk, FineTuneJob.Status.STOPPED)
            return FineTuneJob.Status.STOPPED
        model = _register(job, params, result)
        actions.finish_finetune(job.pk, FineTuneJob.Status.DONE, adapter_path=str(result.adapter_dir), model=model)
        actions.append_finetune_log(job.pk, f"registered as model '{model.name}'")
        return FineTuneJob.Status.DONE
    except Exception as error:  # noqa: BLE001 - any failure ends the job visibly, log kept
        log.exception("fine-tune job %s failed", job_id)
        tail = "".join(traceback.format_exception(error)[-3:])
        actions.append_finetune_log(job.pk, f"failed: {type(error).__name__}: {error}\n{tail}")
        actions.finish_finetune(job.pk, FineTuneJob.Status.FAILED, error=f"{type(error).__name__}: {error}")
        return FineTuneJob.Status.FAILED


def _training_chats(job: FineTuneJob) -> list[list[dict[str, str]]]:
    dialogues = list(Dialogue.objects.filter(pk__in=job.dialogue_ids).order_by("id"))
    if len(dialogues) != len(job.dialogue_ids):
        raise ValueError(
            f"{len(job.dialogue_ids) - len(dialogues)} of the job's {len(job.dialogue_ids)} training dialogues "
            "were deleted after it was queued"
        )
    turns = turn_pairs(dialogues)
    return [actions.training_messages(turns.get(d.pk, []), job.system_prompt) for d in dialogues]


def _register(job: FineTuneJob, params: finetune.LoraHyperparameters, result: finetune.TrainResult):
    base = job.base_model
    name = job.output_name
    if type(base).objects.filter(name=name).exists():
        name = f"{job.output_name}-{job.pk}"[:120]
    provenance = {
        "finetune_job": job.pk,
        "study": job.study.slug,
        "split": job.split,
        "derived_only": job.derived_only,
        "min_judge_total": job.min_judge_total,
        "dialogue_count": job.dialogue_count,
        "training_set_sha256": job.hyperparameters.get("training_set_sha256", ""),
        "system_prompt": job.system_prompt,
        "hyperparameters": params.as_dict(),
        "base_model": {"id": base.pk, "name": base.name, "path": base.base_model},
        "steps": result.steps,
        "first_loss": round(result.losses[0], 6) if result.losses else None,
        "final_loss": round(result.losses[-1], 6) if result.losses else None,
        "examples": result.examples,
        "skipped_examples": result.skipped,
        "truncated_examples": result.truncated,
        "supervised_tokens": result.supervised_tokens,
        "seconds": round(result.seconds, 2),
        "trained_at": timezone.now().isoformat(),
    }
    return inference_actions.register_model(
        name=name,
        backend=base.backend,
        base_model=base.base_model,
        adapter_path=str(result.adapter_dir),
        chat_template=base.chat_template,
        system_prompt=job.system_prompt,
        context_length=base.context_length,
        temperature=base.temperature,
        top_p=base.top_p,
        top_k=base.top_k,
        max_new_tokens=base.max_new_tokens,
        repetition_penalty=base.repetition_penalty,
        seed=base.seed,
        is_finetuned=True,
        base_of=base,
        provenance=provenance,
        created_by=job.created_by,
    )
