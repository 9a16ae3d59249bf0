"""Dialogues into a study: import files (a pure parser, then one atomic write), or store one derived
from another (the recipe's MI-style rewrites: other apps never write dialogues themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from .. import parsers
from ..errors import ActionError
from ..models import Dialogue, ImportBatch, Study, Turn


def import_dialogues(
    study: Study,
    *,
    data: bytes | None = None,
    filename: str = "",
    path: str | None = None,
    fmt: str | None = None,
    split: str | None = None,
    created_by=None,
) -> ImportBatch:
    """Parse an upload (``data`` + ``filename``) or a server-side ``path`` and store it, all or nothing.

    Raises ``parsers.ImportFormatError`` (file, record, field named) for bad input and ``ActionError``
    for conflicts with the study (an external id that already exists). Content duplicates — within the
    import or against the study — are stored and flagged with ``duplicate_of``, never dropped.
    """
    if data is not None:
        parsers.check_size(len(data), settings.MI_MAX_IMPORT_BYTES, filename)
        result = parsers.parse_bytes(data, filename, fmt=fmt)
        label = filename
    elif path is not None:
        result = parsers.parse_path(path, fmt=fmt)
        label = str(path)
    else:
        raise ActionError("Nothing to import: give a file.")
    if split is not None and split not in Dialogue.Split.values:
        raise ActionError(f"Unknown split '{split}'; use train, test or unused.")
    return _store(study, result, label=label, split=split, created_by=created_by)


@transaction.atomic
def _store(study: Study, result: parsers.ParseResult, *, label: str, split: str | None, created_by) -> ImportBatch:
    dialogues: Sequence[parsers.ParsedDialogue] = result.dialogues
    ext_ids = [d.external_id for d in dialogues]
    clash = list(
        Dialogue.objects.filter(study=study, external_id__in=ext_ids).values_list("external_id", flat=True)[:5]
    )
    if clash:
        raise ActionError(
            f"{label}: dialogue id(s) already in this study: {', '.join(clash)} (field external_id); "
            "nothing was imported."
        )
    # Earlier dialogues of the study with the same content: flag new copies as duplicates of them.
    hashes = {d.content_hash for d in dialogues}
    existing = dict(
        Dialogue.objects.filter(study=study, content_hash__in=hashes, duplicate_of__isnull=True)
        .order_by("id")
        .values_list("content_hash", "id")
    )
    batch = ImportBatch.objects.create(
        study=study, filename=label[:500], format=result.format, created_by=created_by,
        warnings=list(result.warnings)[:1000],
    )
    rows = [
        Dialogue(
            study=study,
            external_id=d.external_id,
            source_dataset=d.source_dataset or "",
            split=split or d.split or Dialogue.Split.UNUSED,
            topic=(d.topic or "")[:200],
            metadata=d.metadata or {},
            content_hash=d.content_hash,
            import_batch=batch,
            round_count=d.rounds,
        )
        for d in dialogues
    ]
    created = Dialogue.objects.bulk_create(rows, batch_size=1000)
    turns = [
        Turn(dialogue=row, index=i, speaker=t.speaker, text=t.text)
        for row, d in zip(created, dialogues, strict=True)
        for i, t in enumerate(d.turns)
    ]
    Turn.objects.bulk_create(turns, batch_size=2000)

    duplicates: dict[str, str] = {}
    first_by_hash: dict[str, Dialogue] = {}
    to_flag: list[Dialogue] = []
    id_to_ext = {}
    if existing:
        id_to_ext = dict(Dialogue.objects.filter(id__in=existing.values()).values_list("id", "external_id"))
    for row in created:
        if row.content_hash in existing:
            row.duplicate_of_id = existing[row.content_hash]
            duplicates[row.external_id] = id_to_ext[row.duplicate_of_id]
            to_flag.append(row)
        elif row.content_hash in first_by_hash:
            first = first_by_hash[row.content_hash]
            row.duplicate_of_id = first.id
            duplicates[row.external_id] = first.external_id
            to_flag.append(row)
        else:
            first_by_hash[row.content_hash] = row
    if to_flag:
        Dialogue.objects.bulk_update(to_flag, ["duplicate_of"], batch_size=1000)
    batch.dialogue_count = len(created)
    batch.round_count = sum(d.rounds for d in dialogues)
    batch.duplicates = duplicates
    batch.save(update_fields=["dialogue_count", "round_count", "duplicates"])
    return batch


@transaction.atomic
def create_derived_dialogue(
    study: Study,
    source: Dialogue,
    *,
    external_id: str,
    split: str,
    turns: Sequence[tuple[str, str]],
    metadata: dict,
) -> Dialogue:
    """Store a dialogue derived from ``source`` (e.g. an MI-style rewrite) with its turns.

    The new dialogue keeps the source's dataset and topic, records ``derived_from``, and gets its own
    content hash and round count (the importers' rules). An ``external_id`` already used in the study
    raises ``IntegrityError`` (the unique constraint); this runs in a savepoint of its own, so the
    caller decides what a clash means and its transaction stays usable.
    """
    parsed = parsers.ParsedDialogue(
        external_id=external_id[:200], turns=[parsers.ParsedTurn(speaker, text) for speaker, text in turns]
    )
    dialogue = Dialogue.objects.create(
        study=study,
        external_id=parsed.external_id,
        source_dataset=source.source_dataset,
        split=split,
        topic=source.topic,
        metadata=metadata,
        content_hash=parsed.content_hash,
        derived_from=source,
        round_count=parsed.rounds,
    )
    Turn.objects.bulk_create(
        [Turn(dialogue=dialogue, index=i, speaker=t.speaker, text=t.text) for i, t in enumerate(parsed.turns)]
    )
    return dialogue
