"""The work of machine coding, called by its Celery tasks (``inference.coders.tasks``) and directly by
commands and tests: train a classifier; code one chunk of volleys.

A chunk runs through :func:`inference.chunks.run_claimed_chunk` like a generation chunk: claimed with
a token, only named transient errors retried, outcomes stored only to items still ours. An LLM answer
that :func:`inference.machine_coding.llm_coder.parse_answer` refuses is asked again once; refused
again, the item fails with the reason and stores no code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from annotation import miti

from .. import claims, registry
from ..backends import get_backend
from ..chunks import TRANSIENT_ERRORS, ChunkSteps, run_claimed_chunk
from ..machine_coding import classifier, llm_coder
from . import actions
from .models import MachineCoder, MachineCodingItem, MachineCodingRun

RETRIES_FOR_INVALID = 1


def train_classifier(coder_id: int) -> dict[str, Any]:
    """The training job: transcript-level cross-validation, then the final fit on every label."""
    coder = actions.claim_training(coder_id)
    if coder is None:
        return {"coder": coder_id, "skipped": "not queued"}
    try:
        assert coder.training_round is not None, "no training round"
        samples, labels, info = actions.labelled_samples(coder.training_round)
        if len(set(labels)) < 2:
            raise ValueError(f"the round has {len(labels)} labelled utterances with fewer than 2 distinct codes")
        folds = coder.folds

        def cv_progress(done: int, total: int) -> None:
            actions.set_training_progress(coder, 0.8 * done / max(total, 1))

        validation = classifier.cross_validate(samples, labels, folds=folds, seed=coder.seed, progress=cv_progress)
        trained = classifier.train(samples, labels, seed=coder.seed)
        path = actions.artefact_path(coder)
        trained.save(path)
        info.update(seed=coder.seed, folds=folds, labels=list(trained.labels))
        actions.finish_training(coder, validation=validation, info=info, path=path)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - the page shows why training failed
        actions.fail_training(coder, f"{type(error).__name__}: {error}")
        return {"coder": coder_id, "status": "failed", "error": str(error)}
    return {"coder": coder_id, "status": "ready", "kappa": validation.kappa}


@lru_cache(maxsize=8)
def _load_classifier(path: str, mtime: float) -> classifier.TrainedCoder:
    return classifier.TrainedCoder.load(Path(path))


def execute_chunk(task, run_id: int, item_ids: Sequence[int], claim_token: str | None = None) -> dict[str, Any]:
    run = MachineCodingRun.objects.select_related("coder", "coding_round__study").filter(pk=run_id).first()
    if run is None:
        return {"run": run_id, "claimed": 0, "skipped": "no such run"}
    steps = ChunkSteps(
        claim=lambda token: actions.claim_items(run, item_ids, token),
        foreign_wait=lambda token: claims.seconds_until_foreign_claims_go_stale(MachineCodingItem, item_ids, token),
        compute=lambda items: code_outcomes(run, items),
        store=actions.store_outcomes,
        release=actions.release_claims,
        finish=lambda: actions.finish_run_if_complete(run),
    )
    result = run_claimed_chunk(task, claim_token or claims.new_claim_token(), steps)
    failed = sum(1 for outcome in result.outcomes.values() if outcome.error)
    return {"run": run_id, "claimed": len(result.items), "written": result.written, "failed": failed}


def _volleys(items: Sequence[MachineCodingItem]) -> dict[int, Any]:
    from annotation.models import Volley

    return {v.pk: v for v in Volley.objects.filter(pk__in=[i.volley_id for i in items]).prefetch_related("utterances")}


def code_outcomes(run: MachineCodingRun, items: Sequence[MachineCodingItem]) -> dict[int, actions.ItemOutcome]:
    if run.coder.kind == MachineCoder.Kind.CLASSIFIER:
        return _classifier_outcomes(run.coder, items)
    return _llm_outcomes(run, items)


def _classifier_outcomes(coder: MachineCoder, items: Sequence[MachineCodingItem]) -> dict[int, actions.ItemOutcome]:
    try:
        path = Path(coder.artefact_path)
        trained = _load_classifier(str(path), path.stat().st_mtime)
    except Exception as error:  # noqa: BLE001 - a missing artefact fails the chunk, visibly
        return {item.pk: actions.ItemOutcome(error=f"classifier could not load: {error}") for item in items}
    volleys = _volleys(items)
    per_item = [(item, *actions.samples_for_volley(volleys[item.volley_id])) for item in items]
    flat = [s for _item, _utts, samples in per_item for s in samples]
    predicted = iter(trained.predict(flat))
    outcomes: dict[int, actions.ItemOutcome] = {}
    for item, utterances, _samples in per_item:
        codes = {u.pk: next(predicted) for u in utterances}
        bad = [c for c in codes.values() if c not in actions.CODES]
        outcomes[item.pk] = (
            actions.ItemOutcome(error=f"unknown code from the classifier: {bad[0]}") if bad
            else actions.ItemOutcome(codes=codes)
        )
    return outcomes


def _first_code(entry: list[str]) -> str:
    # One code per utterance, as a human codes: the first the answer names ("no code" when none).
    return entry[0] if entry else miti.NO_CODE


def _llm_outcomes(run: MachineCodingRun, items: Sequence[MachineCodingItem]) -> dict[int, actions.ItemOutcome]:
    try:
        backend = get_backend(registry.spec_from_snapshot(run.params))
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - a backend that cannot start fails the chunk, visibly
        return {item.pk: actions.ItemOutcome(error=f"backend could not start: {type(error).__name__}: {error}")
                for item in items}
    volleys = _volleys(items)
    prompts: dict[int, tuple[list[Any], list[dict[str, str]]]] = {}
    for item in items:
        volley = volleys[item.volley_id]
        utterances = sorted(volley.utterances.all(), key=lambda u: u.index)
        context = [("Client", volley.client_context)] if volley.client_context else []
        messages = llm_coder.build_messages(
            codebook=run.coder.codebook, change_goal=run.coding_round.study.change_goal, context=context,
            volley=[u.text for u in utterances], codes=actions.CODES,
        )
        prompts[item.pk] = (utterances, messages)
    outcomes: dict[int, actions.ItemOutcome] = {}
    pending = [item.pk for item in items]
    reasons: dict[int, list[str]] = {pk: [] for pk in pending}
    for _attempt in range(1 + RETRIES_FOR_INVALID):
        if not pending:
            break
        try:
            results = backend.generate([prompts[pk][1] for pk in pending])
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. out of memory: the chunk fails, visibly
            for pk in pending:
                outcomes[pk] = actions.ItemOutcome(error=f"{type(error).__name__}: {error}")
            return outcomes
        again: list[int] = []
        for pk, result in zip(pending, results, strict=True):
            utterances = prompts[pk][0]
            if result.error:
                outcomes[pk] = actions.ItemOutcome(response=result.text, error=f"backend error: {result.error}")
                continue
            try:
                answer = llm_coder.parse_answer(result.text, utterances=len(utterances), codes=actions.CODES)
            except llm_coder.InvalidAnswer as invalid:
                reasons[pk].append(invalid.reason)
                outcomes[pk] = actions.ItemOutcome(
                    response=result.text,
                    error=f"invalid answer ({len(reasons[pk])} tries): " + " / ".join(reasons[pk]),
                )
                again.append(pk)
                continue
            outcomes[pk] = actions.ItemOutcome(
                codes={u.pk: _first_code(entry) for u, entry in zip(utterances, answer, strict=True)},
                response=result.text,
            )
        pending = again
    return outcomes
