"""Entry points: format detection, files, folders and zip archives."""

from __future__ import annotations

import io
import re
import zipfile
from os import PathLike
from pathlib import Path, PurePosixPath

from .annomi import looks_like_annomi, parse_annomi
from .base import (
    ImportFormatError,
    ParsedDialogue,
    ParseResult,
    decode_utf8,
    find_content_duplicates,
    location,
)
from .cpsycound import looks_like_cpsycound, parse_cpsycound
from .jsonformats import PARSERS as JSON_PARSERS
from .jsonformats import Records, detect_json_format, load_records

FORMATS = ("jsonl", "cpsycound", "psydt", "sharegpt", "alpaca", "annomi")
FILE_SUFFIXES = (".txt", ".json", ".jsonl", ".csv")
# Uploads are size-checked by the caller; this bounds what a small zip may expand to.
DEFAULT_MAX_UNPACKED_BYTES = 512 * 1024 * 1024


def _suffix(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


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


def _skipped(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and hidden files are never dialogue files."""
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def _detect(text: str, filename: str) -> tuple[str, Records | None]:
    suffix = _suffix(filename)
    if suffix == ".txt":
        return "cpsycound", None
    if suffix == ".csv" or looks_like_annomi(text):
        return "annomi", None
    if suffix in (".json", ".jsonl") or text.lstrip()[:1] in ("[", "{"):
        records = load_records(text, filename)  # decoded once, reused by the parser
        return detect_json_format(records, filename), records
    if looks_like_cpsycound(text):
        return "cpsycound", None
    raise ImportFormatError(
        "unknown format: not CPsyCounD text, AnnoMI CSV or JSON; name the format explicitly "
        f"(one of {', '.join(FORMATS)})",
        filename,
        None,
        "fmt",
    )


def detect_format(data: bytes, filename: str) -> str:
    """The format name of one (non-archive) file, from its content and extension."""
    return _detect(decode_utf8(data, filename), filename)[0]


def _parse_file(
    data: bytes, filename: str, fmt: str | None, warnings: list[str]
) -> tuple[str, list[ParsedDialogue]]:
    text = decode_utf8(data, filename)
    records: Records | None = None
    if fmt is None:
        fmt, records = _detect(text, filename)
    if fmt == "cpsycound":
        return fmt, parse_cpsycound(text, filename, warnings)
    if fmt == "annomi":
        return fmt, parse_annomi(text, filename, warnings)
    if records is None:
        records = load_records(text, filename)
    return fmt, JSON_PARSERS[fmt](records, filename, warnings)


def _parse_members(
    members: list[tuple[str, bytes]], container: str, fmt: str | None, warnings: list[str]
) -> ParseResult:
    if not members:
        raise ImportFormatError(
            f"no dialogue files ({', '.join(FILE_SUFFIXES)}) found", container, None, None
        )
    dialogues: list[ParsedDialogue] = []
    first_format: tuple[str, str] | None = None  # (format, file) of the first member
    for filename, data in members:
        found, parsed = _parse_file(data, filename, fmt, warnings)
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
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> ParseResult:
    """Parse an upload: one file, or a zip of files (members sorted naturally, hidden ones skipped).

    ``filename`` is used for format detection (extension) and in messages; ``fmt`` forces one of
    FORMATS. External ids must be unique across the whole upload; content duplicates are only warned.
    """
    _check_fmt(fmt, filename)
    warnings: list[str] = []
    if _is_zip(data, filename):
        members = _zip_members(data, filename, max_unpacked_bytes, warnings)
    else:
        members = [(filename, data)]
    return _parse_members(members, filename, fmt, warnings)


def parse_path(path: str | PathLike[str], fmt: str | None = None) -> ParseResult:
    """Parse a file, a zip archive or a folder (every .txt/.json/.jsonl/.csv below it, naturally sorted)."""
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
        return _parse_members(members, str(path), fmt, warnings)
    if not path.is_file():
        raise ImportFormatError("no such file or folder", str(path), None, None)
    return parse_bytes(path.read_bytes(), str(path), fmt)
