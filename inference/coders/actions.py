"""State changes of machine coders: register, train (the job's steps), add to a round, run, store.

Atomic, tasks sent by name after commit (``inference.claims``). The codes themselves are written by
``annotation.actions.record_machine_codes``: a machine coding is stored like a human's.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from annotation import actions as annotation_actions
from annotation import miti
from annotation.errors import ActionError
from annotation.models import Assignment, CodingRound, Study, Utterance, UtteranceCode, Volley

from .. import claims, registry
from ..machine_coding.classifier import CrossValidation, UtteranceSample
from ..models import RegisteredModel
from .models import MachineCoder, MachineCodingItem, MachineCodingRun

TRAIN_TASK = "inference.coders.tasks.train_classifier"
CHUNK_TASK = "inference.coders.tasks.code_chunk"
CLASSIFIER_CHUNK = 200  # volleys per chunk for a classifier: prediction is cheap
CODES: tuple[str, ...] = (*miti.CODE_KEYS, miti.NO_CODE)


def default_codebook() -> str:
    """The MITI 4.2.1 behaviour codes as an LLM coder's codebook (names and short definitions)."""
    lines = ["You code counselor utterances with MITI 4.2.1 behaviour codes. One code per utterance:"]
    lines += [f"- {c.key}: {c.name} — {c.short}" for c in miti.BEHAVIOUR_CODES]
    lines.append(f"- {miti.NO_CODE}: no MITI behaviour code applies")
    return "\n".join(lines)


def _service_user(study: Study, name: str):
    # A readable name for the audit trail; the random tail keeps it unique across studies and renames.
    username = f"machine-{slugify(study.slug)[:40]}-{slugify(name)[:60] or 'coder'}-{secrets.token_hex(3)}"
    return annotation_actions.create_service_user(username)


def _check_name(study: Study, name: str) -> str:
    name = name.strip()
    if not name:
        raise ActionError("Give the machine coder a name.")
    if MachineCoder.objects.filter(study=study, name=name).exists():
        raise ActionError(f"A machine coder named '{name}' already exists in this study.")
    return name


@transaction.atomic
def register_classifier(
    study: Study, *, name: str, training_round: CodingRound, seed: int = 0, folds: int = 5, created_by=None
) -> MachineCoder:
    """Register a classifier to be trained on ``training_round``'s labels; the training job is queued."""
    name = _check_name(study, name)
    if training_round.study_id != study.pk:
        raise ActionError("The training round belongs to another study.")
    if folds < 2:
        raise ActionError("Cross-validation needs at least 2 folds.")
    coder = MachineCoder.objects.create(
        study=study, name=name, kind=MachineCoder.Kind.CLASSIFIER, service_user=_service_user(study, name),
        training_round=training_round, seed=seed, folds=folds, created_by=created_by,
    )
    claims.send_after_commit(TRAIN_TASK, [[coder.pk]], queue="cpu")
    return coder


@transaction.atomic
def register_llm_coder(
    study: Study, *, name: str, model: RegisteredModel, codebook: str = "", created_by=None
) -> MachineCoder:
    """Register an LLM coder: a registered model prompted with the codebook (ready at once)."""
    name = _check_name(study, name)
    codebook = codebook.strip() or default_codebook()
    return MachineCoder.objects.create(
        study=study, name=name, kind=MachineCoder.Kind.LLM, model=model, service_user=_service_user(study, name),
        codebook=codebook, status=MachineCoder.Status.READY, trained_at=timezone.now(), created_by=created_by,
        trained_with={"model": model.name, "backend": model.backend, "params": registry.params_snapshot(model)},
    )


# --- training -----------------------------------------------------------------------------------


def labelled_samples(coding_round: CodingRound) -> tuple[list[UtteranceSample], list[str], dict]:
    """The round's labelled utterances: per transcript its submitted consensus where adjudicated, else
    its first submitted coding (imported labels: the annotator's). Groups are transcripts."""
    chosen: dict[int, int] = {}
    for aid, tid, kind in (
        Assignment.objects.filter(
            coding_round=coding_round, status=Assignment.Status.SUBMITTED, in_results=True,
            kind__in=(Assignment.Kind.CODING, Assignment.Kind.CONSENSUS),
        ).order_by("transcript_id", "coder_id", "id").values_list("id", "transcript_id", "kind")
    ):
        if kind == Assignment.Kind.CONSENSUS or tid not in chosen:
            chosen[tid] = aid
    codes = dict(
        UtteranceCode.objects.filter(assignment_id__in=list(chosen.values())).values_list("utterance_id", "code")
    )
    samples: list[UtteranceSample] = []
    labels: list[str] = []
    volleys = Volley.objects.filter(transcript_id__in=list(chosen)).prefetch_related("utterances").order_by(
        "transcript_id", "index"
    )
    for volley in volleys:
        utterances = sorted(volley.utterances.all(), key=lambda u: u.index)
        for u in utterances:
            if u.pk in codes:
                samples.append(_sample(volley, u, len(utterances)))
                labels.append(codes[u.pk])
    info = {
        "round": coding_round.pk, "round_name": coding_round.name, "transcripts": len(chosen),
        "consensus": Assignment.objects.filter(pk__in=list(chosen.values()), kind=Assignment.Kind.CONSENSUS).count(),
        "utterances": len(samples), "label_counts": {code: labels.count(code) for code in sorted(set(labels))},
    }
    return samples, labels, info


def _sample(volley: Volley, utterance: Utterance, volley_size: int) -> UtteranceSample:
    return UtteranceSample(
        text=utterance.text, previous_client=volley.client_context, position=utterance.index,
        volley_size=volley_size, group=str(volley.transcript_id),
    )


def samples_for_volley(volley: Volley) -> tuple[list[Utterance], list[UtteranceSample]]:
    utterances = sorted(volley.utterances.all(), key=lambda u: u.index)
    return utterances, [_sample(volley, u, len(utterances)) for u in utterances]


def claim_training(coder_id: int) -> MachineCoder | None:
    """Take a queued training job (one conditional update: a second delivery gets None)."""
    if MachineCoder.objects.filter(pk=coder_id, status=MachineCoder.Status.QUEUED).update(
        status=MachineCoder.Status.TRAINING, progress=0.0, error=""
    ) != 1:
        return None
    return MachineCoder.objects.get(pk=coder_id)


def set_training_progress(coder: MachineCoder, progress: float) -> None:
    MachineCoder.objects.filter(pk=coder.pk, status=MachineCoder.Status.TRAINING).update(
        progress=min(1.0, max(0.0, progress))
    )


def artefact_path(coder: MachineCoder) -> Path:
    return Path(settings.MI_MODEL_STORE) / "machine-coders" / f"coder-{coder.pk}.pkl"


def finish_training(coder: MachineCoder, *, validation: CrossValidation, info: dict, path: Path) -> None:
    MachineCoder.objects.filter(pk=coder.pk).update(
        status=MachineCoder.Status.READY, progress=1.0, validation=asdict(validation), trained_with=info,
        artefact_path=str(path), trained_at=timezone.now(), error="",
    )


def fail_training(coder: MachineCoder, error: str) -> None:
    MachineCoder.objects.filter(pk=coder.pk).update(status=MachineCoder.Status.FAILED, error=error[:2000])


@transaction.atomic
def retrain(coder: MachineCoder) -> MachineCoder:
    """Queue a failed classifier's training again."""
    if coder.kind != MachineCoder.Kind.CLASSIFIER or coder.status != MachineCoder.Status.FAILED:
        raise ActionError(gettext("Only a classifier whose training failed can be trained again."))
    MachineCoder.objects.filter(pk=coder.pk).update(status=MachineCoder.Status.QUEUED, progress=0.0, error="")
    claims.send_after_commit(TRAIN_TASK, [[coder.pk]], queue="cpu")
    coder.refresh_from_db()
    return coder


# --- coding a round -------------------------------------------------------------------------------


@transaction.atomic
def start_coding_run(
    coder: MachineCoder, coding_round: CodingRound, *, created_by=None, chunk_size: int | None = None
) -> MachineCodingRun:
    """Add the machine coder to the round (a machine assignment for every transcript, whatever the
    overlap) and queue the volleys of its transcripts not yet coded whole, in chunks."""
    if coding_round.study_id != coder.study_id:
        raise ActionError("The round belongs to another study.")
    if coder.status != MachineCoder.Status.READY:
        raise ActionError(f"The machine coder '{coder.name}' is not ready ({coder.get_status_display()}).")
    if MachineCodingRun.objects.filter(
        coder=coder, coding_round=coding_round, status__in=(MachineCodingRun.Status.QUEUED, MachineCodingRun.Status.RUNNING)
    ).exists():
        raise ActionError("This machine coder is already coding this round.")
    annotation_actions.add_machine_coding(coding_round, coder.service_user)
    if coder.kind == MachineCoder.Kind.LLM:
        assert coder.model is not None
        fatal = registry.fatal_messages(registry.problems_for(coder.model, deep=False))
        if fatal:
            raise ActionError(f"Model '{coder.model.name}' cannot generate: " + "; ".join(fatal) + ".")
        params, queue, size = registry.params_snapshot(coder.model), registry.queue_for(coder.model.backend), 8
    else:
        params, queue, size = {}, "cpu", CLASSIFIER_CHUNK
    run = MachineCodingRun.objects.create(
        coder=coder, coding_round=coding_round, params=params, queue=queue, chunk_size=chunk_size or size,
        created_by=created_by,
    )
    open_assignments = Assignment.objects.filter(
        coding_round=coding_round, coder=coder.service_user, kind=Assignment.Kind.MACHINE
    ).exclude(status=Assignment.Status.SUBMITTED)
    pairs = list(
        Volley.objects.filter(transcript__assignments__in=open_assignments)
        .order_by("transcript_id", "index")
        .values_list("pk", "transcript__assignments__pk")
    )
    wanted = set(open_assignments.values_list("pk", flat=True))
    items = MachineCodingItem.objects.bulk_create(
        [MachineCodingItem(run=run, volley_id=v, assignment_id=a) for v, a in pairs if a in wanted]
    )
    if not items:
        MachineCodingRun.objects.filter(pk=run.pk).update(status=MachineCodingRun.Status.DONE, finished_at=timezone.now())
        run.refresh_from_db()
        return run
    _enqueue(run, [i.pk for i in items])
    return run


def _enqueue(run: MachineCodingRun, ids: Sequence[int]) -> None:
    claims.send_after_commit(CHUNK_TASK, ([run.pk, chunk] for chunk in claims.chunked(list(ids), run.chunk_size)),
                             queue=run.queue)


@transaction.atomic
def retry_failed(run: MachineCodingRun) -> int:
    """Put a finished run's failed items back in the queue; returns how many."""
    ids = list(run.items.filter(status=MachineCodingItem.Status.FAILED).values_list("pk", flat=True))
    if not ids:
        return 0
    MachineCodingItem.objects.filter(pk__in=ids).update(
        status=MachineCodingItem.Status.PENDING, error="", response="", claim_token="", claimed_at=None
    )
    MachineCodingRun.objects.filter(pk=run.pk).update(status=MachineCodingRun.Status.RUNNING, finished_at=None, error="")
    _enqueue(run, ids)
    return len(ids)


def claim_items(run: MachineCodingRun, item_ids: Sequence[int], token: str) -> list[MachineCodingItem]:
    if not item_ids:
        return []
    with transaction.atomic():
        mine = claims.claim(MachineCodingItem, item_ids, token, scope={"run": run})
        if mine and run.status == MachineCodingRun.Status.QUEUED:
            MachineCodingRun.objects.filter(pk=run.pk, status=MachineCodingRun.Status.QUEUED).update(
                status=MachineCodingRun.Status.RUNNING, started_at=timezone.now()
            )
    return sorted(mine, key=lambda item: (item.assignment_id, item.volley_id))


def release_claims(token: str) -> int:
    return claims.release(MachineCodingItem, token)


@dataclass
class ItemOutcome:
    """Codes for every utterance of the volley (utterance pk → code), or the error that kept them out."""

    codes: dict[int, str] = field(default_factory=dict)
    response: str = ""
    error: str = ""


def store_outcomes(token: str, outcomes: Mapping[int, ItemOutcome]) -> int:
    """Write each outcome to its item if we still hold it: a valid one's codes go to the machine
    assignment (``record_machine_codes``) in the same transaction as the item's "done"; an error
    stores no code. One transaction per item: nothing partial survives for an item."""
    written = 0
    now = timezone.now()
    for pk in sorted(outcomes):
        outcome = outcomes[pk]
        with transaction.atomic():
            item = (
                MachineCodingItem.objects.select_for_update()
                .filter(claims.held_by(MachineCodingItem, token), pk=pk)
                .select_related("assignment").first()
            )
            if item is None:
                continue
            error = outcome.error
            if not error:
                try:
                    annotation_actions.record_machine_codes(item.assignment, outcome.codes)
                except ActionError as exc:
                    error = f"codes not stored: {exc}"
            MachineCodingItem.objects.filter(pk=pk).update(
                status=MachineCodingItem.Status.FAILED if error else MachineCodingItem.Status.DONE,
                error=error[:4000], response=outcome.response[:20000], finished_at=now,
            )
            written += 1
    return written


def finish_run_if_complete(run: MachineCodingRun) -> bool:
    open_statuses = (MachineCodingItem.Status.PENDING, MachineCodingItem.Status.CLAIMED)
    if run.items.filter(status__in=open_statuses).exists():
        return False
    failed = run.items.filter(status=MachineCodingItem.Status.FAILED).count()
    total = run.items.count()
    status = MachineCodingRun.Status.FAILED if failed else MachineCodingRun.Status.DONE
    error = f"{failed} of {total} volleys failed; retry them from the machine coder's page." if failed else ""
    return MachineCodingRun.objects.filter(
        pk=run.pk, status__in=(MachineCodingRun.Status.QUEUED, MachineCodingRun.Status.RUNNING)
    ).update(status=status, error=error, finished_at=timezone.now()) == 1


