"""Dialogues into a study: import files (a pure parser, then one atomic write), or store one derived
from another (the recipe's MI-style rewrites: other apps never write dialogues themselves).

Two ways in. ``import_dialogues`` parses and writes at once (management command, demo, tests).
``request_import`` stores the upload under ``MI_IMPORT_DIR``, creates an ``ImportBatch`` in state
queued and, after commit, sends the ``annotation.run_import`` task by name to the ``cpu`` queue; the
worker calls ``run_import``, which claims the batch, parses (reporting progress), writes everything in
one transaction and ends the batch ``done`` or ``failed``. The stored upload is removed when the
batch ends, done or failed: the coordinator still has the file, and a failed batch keeps the messages.
"""

from __future__ import annotations

import logging
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from .. import claims, parsers
from ..errors import ActionError
from ..models import Dialogue, ImportBatch, Study, Turn
from ..parsers.characters import bad_character, clean_for_display

log = logging.getLogger(__name__)

IMPORT_TASK = "annotation.run_import"
IMPORT_QUEUE = "cpu"
PARSE_SHARE = ImportBatch.PARSE_SHARE


class ClaimLost(Exception):
    """Another worker took the batch over (this one was presumed dead): stop, write nothing."""


# ------------------------------------------------------------------ options


def _check_request(fmt: str | None, split: str | None, options: parsers.ImportOptions, label: str) -> None:
    """Refuse what can be refused before any work: a file name or option with a refused character
    (``parsers.characters``), an unknown format or split, half a prefix pair."""
    problem = bad_character(label, multiline=False)
    if problem is not None:
        raise ActionError(f"The file name contains {problem}; rename the file.")
    for name, value in options.as_dict().items():
        problem = bad_character(value, multiline=False) if isinstance(value, str) else None
        if problem is not None:
            raise ActionError(f"{name}: contains {problem}, which is not allowed.")
    if fmt is not None and fmt not in parsers.FORMATS:
        raise ActionError(f"Unknown format '{fmt}'; use one of {', '.join(parsers.FORMATS)}.")
    if split is not None and split not in Dialogue.Split.values:
        raise ActionError(f"Unknown split '{split}'; use train, test or unused.")
    if bool(options.client_prefix.strip()) != bool(options.counselor_prefix.strip()):
        raise ActionError(f"{label}: name both the client and the counselor prefix, or neither.")


def _batch_options(fmt: str | None, split: str | None, options: parsers.ImportOptions) -> dict[str, Any]:
    return {"format": fmt or "", "split": split or "", **options.as_dict()}


# ------------------------------------------------------------------ at once


def import_dialogues(
    study: Study,
    *,
    data: bytes | None = None,
    filename: str = "",
    path: str | None = None,
    fmt: str | None = None,
    split: str | None = None,
    options: parsers.ImportOptions | None = None,
    created_by=None,
) -> ImportBatch:
    """Parse an upload (``data`` + ``filename``) or a server-side ``path`` and store it, all or nothing.

    Raises ``parsers.ImportFormatError`` (file, record, field named) for bad input and ``ActionError``
    for conflicts with the study (an external id that already exists). Content duplicates — within the
    import or against the study — are stored and flagged with ``duplicate_of``, never dropped.
    """
    options = options or parsers.ImportOptions()
    label = filename if data is not None else str(path or "")
    _check_request(fmt, split, options, label)
    if data is not None:
        parsers.check_size(len(data), settings.MI_MAX_IMPORT_BYTES, filename)
        result = parsers.parse_bytes(data, filename, fmt=fmt, options=options)
    elif path is not None:
        result = parsers.parse_path(path, fmt=fmt, options=options)
    else:
        raise ActionError("Nothing to import: give a file.")
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            study=study, filename=label[:500], format=result.format, status=ImportBatch.Status.DONE, progress=1.0,
            options=_batch_options(fmt, split, options), created_by=created_by, attempts=1,
            started_at=timezone.now(),
        )
        _store(study, result, label=label, split=split, created_by=created_by, batch=batch)
    batch.refresh_from_db()
    return batch


# ------------------------------------------------------------------ in the background


def _stored_name(filename: str) -> str:
    """A safe file name for the stored copy (the batch keeps the name as uploaded, for messages)."""
    try:
        return get_valid_filename(Path(filename.replace("\\", "/")).name)[:200]
    except SuspiciousFileOperation:  # "", "." or "..": nothing usable left
        return "upload"


def _zip_folder(folder: Path, target: Path) -> None:
    """Pack a folder's dialogue files into one zip, so the worker reads what ``parse_path`` would.

    Members are named relative to the folder and the batch is named after the folder, so messages
    read ``<folder>/<file>`` as in a synchronous import.
    """
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, file in parsers.folder_members(folder):
            archive.write(file, name)


def request_import(
    study: Study,
    *,
    upload: UploadedFile | None = None,
    data: bytes | None = None,
    filename: str = "",
    path: str | None = None,
    fmt: str | None = None,
    split: str | None = None,
    options: parsers.ImportOptions | None = None,
    created_by=None,
) -> ImportBatch:
    """Store an upload (a Django ``UploadedFile``, ``data`` bytes, or a server-side file or folder at
    ``path``) under ``MI_IMPORT_DIR`` and queue its import; returns the queued ``ImportBatch`` at once.

    Only cheap checks happen here (format and split names, prefixes named in pairs, the size limit);
    the worker does the rest and records the outcome on the batch. A folder is packed into a zip.
    """
    options = options or parsers.ImportOptions()
    source = Path(path) if path is not None else None
    label = filename or (str(source) if source is not None else "")
    _check_request(fmt, split, options, label)
    size = getattr(upload, "size", None) if upload is not None else len(data) if data is not None else None
    if size is not None:
        parsers.check_size(size, settings.MI_MAX_IMPORT_BYTES, label)
    if upload is None and data is None and source is None:
        raise ActionError("Nothing to import: give a file.")
    if source is not None and not source.exists():
        raise parsers.ImportFormatError("no such file or folder", str(source), None, None)

    folder = Path(settings.MI_IMPORT_DIR) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        target = folder / _stored_name(label)
        if upload is not None:
            temporary = getattr(upload, "temporary_file_path", None)
            if temporary is not None:  # a large upload Django already spooled to disk: move, not copy
                file_move_safe(temporary(), str(target))
            else:
                with target.open("wb") as out:
                    for chunk in upload.chunks():
                        out.write(chunk)
        elif data is not None:
            target.write_bytes(data)
        elif source is not None and source.is_dir():
            target = folder / f"{_stored_name(source.name)}.zip"
            _zip_folder(source, target)
        elif source is not None:
            shutil.copyfile(source, target)
        if size is None:
            parsers.check_size(target.stat().st_size, settings.MI_MAX_IMPORT_BYTES, label)
        with transaction.atomic():
            batch = ImportBatch.objects.create(
                study=study, filename=label[:500], format=fmt or "", options=_batch_options(fmt, split, options),
                upload_path=str(target), created_by=created_by,
            )
            transaction.on_commit(lambda: send_import(batch.pk))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return batch


def send_import(batch_id: int) -> None:
    """Send the import task by name (the web process never imports the tasks module)."""
    from celery import current_app

    current_app.send_task(IMPORT_TASK, args=[batch_id], queue=IMPORT_QUEUE)


class _Progress:
    """Progress and heartbeat of one claimed batch, written (throttled) as the parser reports files."""

    def __init__(self, batch_id: int, token: str) -> None:
        self.batch_id, self.token, self.last = batch_id, token, 0.0

    def update(self, fraction: float, force: bool = False) -> None:
        if not force and fraction - self.last < 0.02:
            return
        self.last = fraction
        mine = ImportBatch.objects.filter(pk=self.batch_id, claim_token=self.token, status=ImportBatch.Status.RUNNING)
        if not mine.update(progress=min(fraction, 0.99), claimed_at=timezone.now()):
            raise ClaimLost()

    def parsed(self, done: int, total: int) -> None:
        self.update(PARSE_SHARE * done / max(total, 1))


def run_import(batch_id: int) -> str:
    """Import a queued batch (the worker's side of ``request_import``). Safe to call twice.

    Claims the batch with a conditional update — a queued batch, or a running one whose claim is
    older than ``MI_IMPORT_CLAIM_STALE_SECONDS`` (its worker died) — so a redelivered task never
    imports twice. Returns ``"done"``, ``"failed"``, ``"finished"`` (it had ended already), ``"busy"``
    (another worker holds a live claim: try later), ``"lost"`` (taken over meanwhile) or ``"gone"``.
    """
    token = claims.new_claim_token()
    # The claim kernel's one conditional UPDATE: queued, or running with a stale claim (a dead worker).
    claimed = bool(claims.claim(ImportBatch, [batch_id], token))
    if claimed:
        ImportBatch.objects.filter(claims.held_by(ImportBatch, token), pk=batch_id).update(
            started_at=timezone.now(), progress=0.0, errors=[]
        )
    batch = ImportBatch.objects.select_related("study", "created_by").filter(pk=batch_id).first()
    if batch is None:
        return "gone"
    if not claimed:
        if batch.finished:
            _remove_upload(batch)  # left behind when a worker died between commit and clean-up
            return "finished"
        return "busy"
    options = batch.options or {}
    progress = _Progress(batch_id, token)
    try:
        data = Path(batch.upload_path).read_bytes()
        result = parsers.parse_bytes(
            data, batch.filename, fmt=options.get("format") or None,
            options=parsers.ImportOptions.from_dict(options), progress=progress.parsed,
        )
        progress.update(PARSE_SHARE, force=True)
        with transaction.atomic():
            _store(
                batch.study, result, label=batch.filename, split=options.get("split") or None,
                created_by=batch.created_by, batch=batch, claim_token=token,
            )
    except ClaimLost:
        log.warning("import batch %s was taken over by another worker; this attempt wrote nothing", batch_id)
        return "lost"
    except (parsers.ImportFormatError, ActionError) as exc:
        return _fail(batch, token, str(exc))
    except IntegrityError:
        return _fail(batch, token, f"{batch.filename}: another import added some of these dialogue ids at the same "
                                   "time (field external_id); nothing was imported.")
    except OSError as exc:
        return _fail(batch, token, f"{batch.filename}: the stored upload cannot be read ({exc.strerror or exc}); "
                                   "upload the file again.")
    except Exception as exc:  # noqa: BLE001 - the batch must end failed, saying why, whatever broke
        log.exception("import batch %s failed", batch_id)
        return _fail(batch, token, f"{batch.filename}: internal error ({type(exc).__name__}: {exc}); "
                                   "nothing was imported.")
    _remove_upload(batch)
    return "done"


def _fail(batch: ImportBatch, token: str, message: str) -> str:
    # The message may quote the file (a key, a value): refused characters are shown as escapes, so the
    # error itself can be stored (PostgreSQL's jsonb holds no NUL) and shown.
    message = clean_for_display(message)
    ended = ImportBatch.objects.filter(pk=batch.pk, claim_token=token, status=ImportBatch.Status.RUNNING).update(
        status=ImportBatch.Status.FAILED, errors=[message], finished_at=timezone.now(),
    )
    if not ended:
        return "lost"
    _remove_upload(batch)
    return "failed"


def _remove_upload(batch: ImportBatch) -> None:
    """Delete the stored upload (its folder under MI_IMPORT_DIR) once the batch has ended."""
    if not batch.upload_path:
        return
    path = Path(batch.upload_path)
    root = Path(settings.MI_IMPORT_DIR).resolve()
    folder = path.parent.resolve()
    if folder.is_relative_to(root) and folder != root:  # never delete outside the import folder
        shutil.rmtree(folder, ignore_errors=True)
    ImportBatch.objects.filter(pk=batch.pk).update(upload_path="")


# ------------------------------------------------------------------ the one write


def _insert_turns(rows: Iterable[tuple[int, int, str, str]]) -> None:
    """Insert (dialogue id, index, speaker, text) rows into the turn table, in the caller's transaction.

    On PostgreSQL with COPY: building ~55,000 model instances and INSERT parameters for CPsyCounD's
    turns took most of the import's time; COPY streams the rows and still checks every constraint.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(Turn._meta.get_field(name).column) for name in ("dialogue", "index", "speaker", "text"))
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {quote(Turn._meta.db_table)} ({columns}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        return
    Turn.objects.bulk_create(
        (Turn(dialogue_id=d, index=i, speaker=speaker, text=text) for d, i, speaker, text in rows), batch_size=2000
    )


def _store(
    study: Study,
    result: parsers.ParseResult,
    *,
    label: str,
    split: str | None,
    created_by,
    batch: ImportBatch | None = None,
    claim_token: str | None = None,
) -> ImportBatch:
    """Write parsed dialogues and their turns into ``batch`` (created when None), in the caller's transaction.

    With ``claim_token`` the batch is ended ``done`` only while that claim holds; otherwise
    ``ClaimLost`` rolls the whole write back.
    """
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
    if batch is None:
        batch = ImportBatch.objects.create(
            study=study, filename=label[:500], format=result.format, created_by=created_by,
            status=ImportBatch.Status.DONE, progress=1.0, attempts=1, started_at=timezone.now(),
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
    _insert_turns(
        (row.pk, i, t.speaker, t.text) for row, d in zip(created, dialogues, strict=True) for i, t in enumerate(d.turns)
    )

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
    ended = {
        "dialogue_count": len(created),
        "round_count": sum(d.rounds for d in dialogues),
        "duplicates": duplicates,
        "warnings": list(result.warnings)[:1000],
        "format": result.format,
        "status": ImportBatch.Status.DONE,
        "progress": 1.0,
        "finished_at": timezone.now(),
    }
    mine = ImportBatch.objects.filter(pk=batch.pk)
    if claim_token is not None:
        mine = mine.filter(claim_token=claim_token, status=ImportBatch.Status.RUNNING)
    if not mine.update(**ended):
        raise ClaimLost()
    for key, value in ended.items():
        setattr(batch, key, value)
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
