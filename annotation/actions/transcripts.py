"""Transcripts: the reference dialogues and generated responses, as blinded, segmented volleys.

Both kinds are built round by round (docs/metrics.md, "Rounds"): round i is the client text q_i followed by the
counselor reply r_i. A counselor turn before the first client turn and a trailing client turn are
not rounds. Reference and generated transcripts therefore have the same volleys and look identical
to a coder; only the counselor text differs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext

from .. import bulk, segmentation
from ..errors import ActionError
from ..models import Dialogue, Transcript, TranscriptSource, Turn, Utterance, Volley

# No 0/O, 1/I/L: blind codes are read aloud and typed by coders.
_BLIND_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_blind_code() -> str:
    return "T-" + "".join(secrets.choice(_BLIND_ALPHABET) for _ in range(5))


def dialogue_rounds(turns: Iterable[Turn | tuple[str, str]]) -> list[tuple[str, str]]:
    """(client text, counselor text) per round; system turns are ignored, same-speaker runs merged."""
    merged: list[list[str]] = []
    for turn in turns:
        speaker, text = (turn.speaker, turn.text) if isinstance(turn, Turn) else turn
        if speaker == Turn.Speaker.SYSTEM:
            continue
        if merged and merged[-1][0] == speaker:
            merged[-1][1] += "\n\n" + text
        else:
            merged.append([speaker, text])
    rounds = []
    for i in range(1, len(merged)):
        if merged[i][0] == Turn.Speaker.COUNSELOR and merged[i - 1][0] == Turn.Speaker.CLIENT:
            rounds.append((merged[i - 1][1], merged[i][1]))
    return rounds


def unique_blind_codes(n: int) -> list[str]:
    """``n`` fresh blind codes, distinct from each other and from every stored one (one query a draw)."""
    codes: set[str] = set()
    while len(codes) < n:
        draw = {new_blind_code() for _ in range(n - len(codes))} - codes
        taken = set(Transcript.objects.filter(blind_code__in=draw).values_list("blind_code", flat=True))
        codes |= draw - taken
    return list(codes)


def _create_transcripts(
    source: TranscriptSource, items: Sequence[tuple[int, Sequence[tuple[str, str]]]]
) -> list[Transcript]:
    """Transcripts (dialogue id, rounds) with their volleys and fixed segmentation, in one insert per table.

    Blind codes are drawn against the stored ones first; the unique constraint still guards a race with a
    concurrent import (the whole action then rolls back and can simply be repeated).
    """
    transcripts = Transcript.objects.bulk_create(
        [
            Transcript(source=source, dialogue_id=dialogue_id, blind_code=code)
            for (dialogue_id, _), code in zip(items, unique_blind_codes(len(items)), strict=True)
        ]
    )
    if bulk.can_insert_json_rows():
        # One statement per table, rows as a JSON document (annotation.bulk): a generated run hands
        # over hundreds of volleys at once.
        rows = [
            (transcript.pk, i, ctx, text)
            for transcript, (_, rounds) in zip(transcripts, items, strict=True)
            for i, (ctx, text) in enumerate(rounds)
        ]
        names = ("transcript", "index", "client_context", "text")
        ids = {
            (t, i): pk
            for pk, t, i in bulk.insert_json_rows(Volley, names, rows, returning=("id", *names[:2]))
        }
        bulk.insert_json_rows(
            Utterance,
            ("volley", "index", "text"),
            (
                (ids[transcript, i], j, part)
                for transcript, i, _, text in rows
                for j, part in enumerate(segmentation.split_utterances(text) or [text])
            ),
        )
        return transcripts
    volleys = Volley.objects.bulk_create(
        [
            Volley(transcript=transcript, index=i, client_context=ctx, text=text)
            for transcript, (_, rounds) in zip(transcripts, items, strict=True)
            for i, (ctx, text) in enumerate(rounds)
        ]
    )
    Utterance.objects.bulk_create(
        [
            Utterance(volley=v, index=j, text=part)
            for v in volleys
            for j, part in enumerate(segmentation.split_utterances(v.text) or [v.text])
        ]
    )
    return transcripts


def _rounds_by_dialogue(dialogue_ids: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
    """Rounds of many dialogues from one query over their turns."""
    turns: dict[int, list[tuple[str, str]]] = {}
    for dialogue_id, speaker, text in (
        Turn.objects.filter(dialogue_id__in=list(dialogue_ids))
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "speaker", "text")
    ):
        turns.setdefault(dialogue_id, []).append((speaker, text))
    return {dialogue_id: dialogue_rounds(items) for dialogue_id, items in turns.items()}


@transaction.atomic
def ensure_reference_source(study, dialogues: Iterable[Dialogue] | None = None) -> TranscriptSource:
    """The study's reference source, with a transcript for each test-split dialogue (idempotent)."""
    source, _ = TranscriptSource.objects.get_or_create(
        study=study, kind=TranscriptSource.Kind.REFERENCE, defaults={"label": "Reference dialogues"}
    )
    if dialogues is None:
        dialogues = Dialogue.objects.filter(study=study, split=Dialogue.Split.TEST)
    have = set(Transcript.objects.filter(source=source).values_list("dialogue_id", flat=True))
    todo = [d for d in dialogues if d.pk not in have]
    rounds = _rounds_by_dialogue(d.pk for d in todo)
    _create_transcripts(source, [(d.pk, rounds[d.pk]) for d in todo if rounds.get(d.pk)])
    return source


@transaction.atomic
def create_generated_source(
    study, *, run_id: int, label: str, responses: Mapping[int, Sequence[str]]
) -> TranscriptSource:
    """Hand a finished generation run to coding: one transcript per dialogue, generated replies as volleys.

    ``responses`` maps a dialogue id to the generated counselor reply of each round, in round order;
    the client context is the gold client turn of that round. Idempotent per run.
    """
    # One read: this run's source if it exists already, and the labels the new one must not reuse.
    base_label = label
    known = list(
        TranscriptSource.objects.filter(
            Q(generation_run_id=run_id) | Q(study=study, label__startswith=base_label)
        )
    )
    for existing in known:
        if existing.generation_run_id == run_id:
            return existing
    taken, n = {source.label for source in known}, 2
    while label in taken:
        label, n = f"{base_label} ({n})", n + 1
    # Validate everything before writing anything (one query over the turns of the study's dialogues).
    turns: dict[int, list[tuple[str, str]]] = {}
    external_ids: dict[int, str] = {}
    for dialogue_id, external_id, speaker, text in (
        Turn.objects.filter(dialogue_id__in=list(responses), dialogue__study=study)
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "dialogue__external_id", "speaker", "text")
    ):
        turns.setdefault(dialogue_id, []).append((speaker, text))
        external_ids[dialogue_id] = external_id
    items = []
    for dialogue_id, replies in responses.items():
        if dialogue_id not in turns:
            raise ActionError(f"Dialogue {dialogue_id} is not in study {study.slug} (or has no turns).")
        gold = dialogue_rounds(turns[dialogue_id])
        if len(replies) != len(gold):
            raise ActionError(
                f"Dialogue {external_ids[dialogue_id]}: {len(replies)} responses for {len(gold)} rounds."
            )
        items.append((dialogue_id, [(q, r) for (q, _gold), r in zip(gold, replies, strict=True)]))
    source = TranscriptSource.objects.create(
        study=study, kind=TranscriptSource.Kind.GENERATED, label=label, generation_run_id=run_id
    )
    _create_transcripts(source, items)
    return source


def _locked_volley(volley: Volley) -> None:
    if volley.transcript.segmentation_locked:
        raise ActionError(gettext("Segmentation is fixed once a coding round with this transcript is open."))


@transaction.atomic
def merge_utterances(volley: Volley, index: int) -> list[Utterance]:
    """Join utterance ``index`` with the next one (coordinators, before a round opens)."""
    _locked_volley(volley)
    parts = list(volley.utterances.order_by("index").values_list("text", flat=True))
    try:
        parts = segmentation.merge_utterances(parts, index)
    except ValueError as exc:
        raise ActionError(str(exc)) from exc
    return _replace_utterances(volley, parts)


@transaction.atomic
def split_utterance(volley: Volley, index: int, at_char: int) -> list[Utterance]:
    """Cut utterance ``index`` before character ``at_char`` (coordinators, before a round opens)."""
    _locked_volley(volley)
    parts = list(volley.utterances.order_by("index").values_list("text", flat=True))
    try:
        parts = segmentation.split_utterance(parts, index, at_char)
    except ValueError as exc:
        raise ActionError(str(exc)) from exc
    return _replace_utterances(volley, parts)


def _replace_utterances(volley: Volley, parts: list[str]) -> list[Utterance]:
    volley.utterances.all().delete()
    return Utterance.objects.bulk_create(
        [Utterance(volley=volley, index=i, text=t) for i, t in enumerate(parts)]
    )
