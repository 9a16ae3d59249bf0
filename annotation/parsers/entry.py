"""Entry points: format detection (which explains itself), files, folders and zip archives."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path, PurePosixPath

from .annomi import looks_like_annomi, parse_annomi
from .base import (
    ImportFormatError,
    ImportOptions,
    ParsedDialogue,
    ParseResult,
    decode_utf8,
    find_content_duplicates,
    location,
)
from .cpsycound import parse_cpsycound
from .jsonformats import PARSERS as JSON_PARSERS
from .jsonformats import Records, detect_json_format, load_records
from .speakers import (
    CPSYCOUND_PAIR,
    KNOWN_PAIRS,
    SpeakerPair,
    candidate_prefixes,
    detect_pair,
    given_pair,
    is_list_of_string_lists,
    is_string_list,
    parse_prefixed_strings,
    parse_prefixed_text,
    stem,
    string_lines,
    suffix,
    text_lines,
)
from .tables import mapped_columns, parse_rows, read_csv_rows, read_parquet_rows

FORMATS = ("jsonl", "cpsycound", "psydt", "sharegpt", "alpaca", "annomi", "openai", "prefixed", "csv", "parquet")
# One line per format, for the message that lists them when no format matches a file.
FORMAT_SUMMARIES = {
    "jsonl": "the project's JSON Lines ({\"external_id\", \"turns\": [{\"speaker\", \"text\"}]} per line)",
    "cpsycound": "CPsyCounD text (turns start with '来访者：'/'心理咨询师：'; a file, folder or zip)",
    "psydt": "PsyDTCorpus JSON ({\"id\", \"normalizedTag\", \"messages\"})",
    "sharegpt": "ShareGPT JSON ({\"conversations\": [{\"from\", \"value\"}]})",
    "alpaca": "Alpaca JSON ({\"instruction\", \"input\", \"output\", \"history\"})",
    "annomi": "AnnoMI CSV (simple or full)",
    "openai": "OpenAI chat JSONL ({\"messages\": [{\"role\", \"content\"}]} per line)",
    "prefixed": "speaker-prefixed text or a JSON list of prefixed strings (known pairs: "
    + ", ".join(pair.describe() for pair in KNOWN_PAIRS)
    + "; or name the prefixes)",
    "csv": "CSV with one row per turn: dialogue id, speaker, text columns (named by you; default "
    "dialogue_id, speaker, text)",
    "parquet": "Parquet with the same columns as the CSV",
}
FILE_SUFFIXES = (".txt", ".json", ".jsonl", ".csv", ".parquet")
JSON_SUFFIXES = (".json", ".jsonl")
# Keys that make each record format, for telling which one a JSON object came closest to.
RECORD_KEYS = {
    "jsonl": ("external_id", "turns"),
    "psydt": ("id", "normalizedTag", "messages"),
    "openai": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
}
# Uploads are size-checked by the caller; this bounds what a small zip may expand to.
DEFAULT_MAX_UNPACKED_BYTES = 512 * 1024 * 1024
Progress = Callable[[int, int], None]  # (files done, files in all)


def _suffix(name: str) -> str:
    return suffix(name)


def _natural_key(name: str) -> list[int | str]:
    # case_2 before case_10, so "first occurrence" of a duplicate is the lower case number.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _check_fmt(fmt: str | None, filename: str) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise ImportFormatError(
            f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}", filename, None, "fmt"
        )


def _is_zip(data: bytes, filename: str) -> bool:
    return _suffix(filename) == ".zip" or data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _is_parquet(data: bytes, filename: str) -> bool:
    return _suffix(filename) == ".parquet" or data[:4] == b"PAR1"


def _skipped(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and hidden files are never dialogue files."""
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


# ------------------------------------------------------------------ detection that explains itself


def no_format(filename: str, closest: str, why: str, record: str | None = None) -> ImportFormatError:
    """The error for a file no reader accepts: why the closest format did not match, then every format."""
    supported = "; ".join(f"{name}: {text}" for name, text in FORMAT_SUMMARIES.items())
    return ImportFormatError(
        f"no supported format matches this file. Closest: {closest} — {why}. Supported formats: {supported}",
        filename,
        record,
        "fmt",
    )


def _why_no_prefixes(lines: list[str], what: str) -> str:
    found = candidate_prefixes(lines)
    if len(found) >= 2:
        return (
            f"looks like {what} with speaker prefixes '{found[0]}'/'{found[1]}', which are not a known pair; "
            "choose 'prefixed' and name the client and counselor prefixes"
        )
    if found:
        return (
            f"looks like {what}, but only one speaker prefix ('{found[0]}') was found; "
            "choose 'prefixed' and name the client and counselor prefixes"
        )
    return f"{what}, but no turn starts with a speaker prefix such as 'Client:' or '来访者：'"


def _why_not_records(records: Records) -> tuple[str, str, str | None]:
    """(closest format, why, record label) for JSON that no record format or prefixed list fits."""
    if not records:
        return "jsonl", "the file holds no records", None
    label, first = records[0]
    if isinstance(first, dict):
        keys = sorted(str(k) for k in first)
        closest = max(RECORD_KEYS, key=lambda fmt: sum(k in first for k in RECORD_KEYS[fmt]))
        needs = " and ".join(f"'{k}'" for k in RECORD_KEYS[closest])
        return closest, f"the record has keys {', '.join(keys) or 'none'}; {closest} needs {needs}", label
    if isinstance(first, list | str):
        return "prefixed", _why_no_prefixes(string_lines(records), "a JSON list of strings"), None
    return "jsonl", f"{label} is a JSON {type(first).__name__}, not a record object or a prefixed string", label


def _csv_header(text: str) -> list[str]:
    first_line = text[: text.find("\n")] if "\n" in text else text
    try:
        return next(csv.reader([first_line]), [])
    except csv.Error:
        return []


def _prefixed_pair(lines: list[str], options: ImportOptions, filename: str, what: str) -> SpeakerPair:
    pair = given_pair(options, filename) or detect_pair(lines)
    if pair is None:
        raise ImportFormatError(
            f"no known speaker prefix pair: {_why_no_prefixes(lines, what)}", filename, None, "client_prefix"
        )
    return pair


def _detect(text: str, filename: str, options: ImportOptions) -> tuple[str, Records | None]:
    """The format of one decoded file, and its JSON records when they were decoded on the way."""
    suffix = _suffix(filename)
    named = given_pair(options, filename)
    if suffix in JSON_SUFFIXES or text.lstrip()[:1] in ("[", "{"):
        try:
            records = load_records(text, filename)  # decoded once, reused by the parser
        except ImportFormatError:
            if suffix in JSON_SUFFIXES:
                raise
            records = None  # "[Session 1]" or "{…}" opening a text transcript: not JSON after all
        if records is not None:
            fmt = detect_json_format(records)
            if fmt is not None:
                return fmt, records
            if (is_string_list(records) or is_list_of_string_lists(records)) and (
                named or detect_pair(string_lines(records))
            ):
                return "prefixed", records
            closest, why, label = _why_not_records(records)
            raise no_format(filename, closest, why, label)
    header = _csv_header(text)
    if suffix == ".csv" or looks_like_annomi(text) or all(c in header for c in mapped_columns(options)):
        if looks_like_annomi(text):
            return "annomi", None
        missing = [c for c in mapped_columns(options) if c not in header]
        if not missing:
            return "csv", None
        raise no_format(
            filename,
            "csv",
            f"the header has columns {', '.join(header) or 'none'}, without {', '.join(repr(c) for c in missing)}; "
            "name the dialogue id, speaker and text columns",
        )
    lines = text_lines(text)
    if not any(line.strip() for line in lines):
        raise ImportFormatError(
            f"dialogue {stem(filename)!r} is empty (no turn with text)", filename, None, "turns"
        )
    pair = named or detect_pair(lines)
    if pair is not None:
        return ("cpsycound" if pair == CPSYCOUND_PAIR and named is None else "prefixed"), None
    raise no_format(filename, "prefixed", _why_no_prefixes(lines, "text"))


def detect_format(data: bytes, filename: str, options: ImportOptions | None = None) -> str:
    """The format name of one (non-archive) file, from its content and extension."""
    if _is_parquet(data, filename):
        return "parquet"
    return _detect(decode_utf8(data, filename), filename, options or ImportOptions())[0]


# ------------------------------------------------------------------ parsing


def _parse_prefixed(
    text: str, filename: str, records: Records | None, options: ImportOptions, warnings: list[str]
) -> list[ParsedDialogue]:
    if records is None and (_suffix(filename) in JSON_SUFFIXES or text.lstrip()[:1] == "["):
        try:
            records = load_records(text, filename)
        except ImportFormatError:
            if _suffix(filename) in JSON_SUFFIXES:
                raise
    if records is not None:
        whole = is_string_list(records)
        if not whole and not is_list_of_string_lists(records):
            raise ImportFormatError(
                "expected a JSON list of prefixed strings, or a list of such lists", filename, None, None
            )
        pair = _prefixed_pair(string_lines(records), options, filename, "a JSON list of strings")
        return parse_prefixed_strings(records, filename, warnings, pair=pair, whole=whole)
    pair = _prefixed_pair(text_lines(text), options, filename, "text")
    return parse_prefixed_text(text, filename, warnings, pair=pair, several=True)


def _parse_file(
    data: bytes, filename: str, fmt: str | None, options: ImportOptions, warnings: list[str]
) -> tuple[str, list[ParsedDialogue]]:
    if fmt == "parquet" or (fmt is None and _is_parquet(data, filename)):
        columns, rows = read_parquet_rows(data, filename)
        return "parquet", parse_rows(columns, rows, filename, warnings, options)
    text = decode_utf8(data, filename)
    records: Records | None = None
    if fmt is None:
        fmt, records = _detect(text, filename, options)
    if fmt == "cpsycound":
        return fmt, parse_cpsycound(text, filename, warnings)
    if fmt == "prefixed":
        return fmt, _parse_prefixed(text, filename, records, options, warnings)
    if fmt == "annomi":
        return fmt, parse_annomi(text, filename, warnings)
    if fmt == "csv":
        columns, rows = read_csv_rows(text, filename)
        return fmt, parse_rows(columns, rows, filename, warnings, options)
    if records is None:
        records = load_records(text, filename)
    return fmt, JSON_PARSERS[fmt](records, filename, warnings, options)


def _parse_members(
    members: list[tuple[str, bytes]],
    container: str,
    fmt: str | None,
    options: ImportOptions,
    warnings: list[str],
    progress: Progress | None,
) -> ParseResult:
    if not members:
        raise ImportFormatError(
            f"no dialogue files ({', '.join(FILE_SUFFIXES)}) found", container, None, None
        )
    dialogues: list[ParsedDialogue] = []
    first_format: tuple[str, str] | None = None  # (format, file) of the first member
    for done, (filename, data) in enumerate(members, 1):
        found, parsed = _parse_file(data, filename, fmt, options, warnings)
        if first_format is None:
            first_format = (found, filename)
        elif found != first_format[0]:
            raise ImportFormatError(
                f"mixed formats: this file is {found}, {first_format[1]} is {first_format[0]}; "
                "import one format at a time",
                filename,
                None,
                "fmt",
            )
        dialogues += parsed
        if progress is not None:
            progress(done, len(members))
    assert first_format is not None  # members is not empty
    seen: dict[str, ParsedDialogue] = {}
    for dialogue in dialogues:
        first = seen.setdefault(dialogue.external_id, dialogue)
        if first is not dialogue:
            raise ImportFormatError(
                f"duplicate external id {dialogue.external_id!r} (first at "
                f"{location(first.origin_file, first.origin_record)})",
                dialogue.origin_file,
                dialogue.origin_record,
                "external_id",
            )
    for duplicate, first_id in find_content_duplicates(dialogues).items():
        warnings.append(f"dialogue {duplicate!r} has the same content as {first_id!r}")
    return ParseResult(dialogues=dialogues, format=first_format[0], warnings=warnings)


def _zip_members(
    data: bytes, filename: str, max_unpacked_bytes: int, warnings: list[str]
) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ImportFormatError("not a valid zip archive", filename, None, None) from None
    kept = []
    for info in archive.infolist():
        if info.is_dir() or _skipped(PurePosixPath(info.filename).parts):
            continue
        if _suffix(info.filename) not in FILE_SUFFIXES:
            warnings.append(f"{filename}/{info.filename}: skipped (not {', '.join(FILE_SUFFIXES)})")
            continue
        kept.append(info)
    unpacked = sum(info.file_size for info in kept)
    if unpacked > max_unpacked_bytes:
        raise ImportFormatError(
            f"archive unpacks to {unpacked:,} bytes, over the limit of {max_unpacked_bytes:,}",
            filename,
            None,
            None,
        )
    members = []
    for info in sorted(kept, key=lambda i: _natural_key(i.filename)):
        label = f"{filename}/{info.filename}"
        try:
            members.append((label, archive.read(info)))
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as err:
            raise ImportFormatError(f"cannot read archive member: {err}", label, None, None) from None
    return members


def parse_bytes(
    data: bytes,
    filename: str,
    fmt: str | None = None,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> ParseResult:
    """Parse an upload: one file, or a zip of files (members sorted naturally, hidden ones skipped).

    ``filename`` is used for format detection (extension) and in messages; ``fmt`` forces one of
    FORMATS; ``options`` carries the coordinator's prefixes, columns and merge tick. External ids
    must be unique across the whole upload; content duplicates are only warned. ``progress`` is
    called after each file with (files done, files in all).
    """
    _check_fmt(fmt, filename)
    warnings: list[str] = []
    if _is_zip(data, filename):
        members = _zip_members(data, filename, max_unpacked_bytes, warnings)
    else:
        members = [(filename, data)]
    return _parse_members(members, filename, fmt, options or ImportOptions(), warnings, progress)


def parse_path(
    path: str | PathLike[str],
    fmt: str | None = None,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ParseResult:
    """Parse a file, a zip archive or a folder (every dialogue file below it, naturally sorted)."""
    path = Path(path)
    _check_fmt(fmt, str(path))
    if path.is_dir():
        warnings: list[str] = []
        members = []
        files = sorted(
            (p for p in path.rglob("*") if p.is_file()),
            key=lambda p: _natural_key(p.relative_to(path).as_posix()),
        )
        for file in files:
            if _skipped(file.relative_to(path).parts):
                continue
            if _suffix(file.name) not in FILE_SUFFIXES:
                warnings.append(f"{file}: skipped (not {', '.join(FILE_SUFFIXES)})")
                continue
            members.append((str(file), file.read_bytes()))
        return _parse_members(members, str(path), fmt, options or ImportOptions(), warnings, progress)
    if not path.is_file():
        raise ImportFormatError("no such file or folder", str(path), None, None)
    return parse_bytes(path.read_bytes(), str(path), fmt, options=options, progress=progress)


def folder_members(path: Path) -> list[tuple[str, Path]]:
    """(name inside the folder, file) of every dialogue file below ``path``, as ``parse_path`` reads them.

    Used to pack a folder into one zip for a background import.
    """
    return [
        (file.relative_to(path).as_posix(), file)
        for file in sorted(path.rglob("*"), key=lambda p: _natural_key(p.relative_to(path).as_posix()))
        if file.is_file() and not _skipped(file.relative_to(path).parts) and _suffix(file.name) in FILE_SUFFIXES
    ]

