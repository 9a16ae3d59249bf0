"""Group results by source, coder, split or any dialogue metadata field (``?group_by=metadata.<key>``).

Grouping splits each source's results by a second property of the coded transcript: its dialogue's
split (train/test), a metadata field (AnnoMI's ``mi_quality``, a CPsyCounD topic, anything an import
stored), or the coder of each coding. Sources stay apart — a reference dialogue and a model's reply
are never averaged together — so a grouped table has one column per (source, group value).

``group=<value>`` restricts to one group: reliability then uses only the transcripts of that group.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from django.http import Http404
from django.utils.translation import gettext as _

from annotation.models import Dialogue, Study, Transcript

from .summaries import CodingSummary, StudySummaries

SOURCE = "source"
PLAIN_GROUPS: tuple[str, ...] = (SOURCE, "split", "coder")
METADATA_PREFIX = "metadata."
# A metadata key as imports store it: letters, digits, _ and - (no nested paths, nothing SQL sees raw).
_KEY = re.compile(r"^[\w-]{1,100}$")
MISSING = "(none)"  # a transcript whose dialogue has no value for the key


def parse_group_by(value: object) -> str:
    """``source`` (the default), ``split``, ``coder`` or ``metadata.<key>``; 404 for anything else."""
    text = str(value or SOURCE)
    if text in PLAIN_GROUPS:
        return text
    if text.startswith(METADATA_PREFIX) and _KEY.match(text[len(METADATA_PREFIX):]):
        return text
    raise Http404("Unknown grouping; use source, split, coder or metadata.<key>.")


def metadata_keys(study: Study) -> list[str]:
    """The metadata keys the study's dialogues carry (sorted), for the page's selector."""
    keys: set[str] = set()
    for metadata in Dialogue.objects.filter(study=study).exclude(metadata={}).values_list("metadata", flat=True).iterator(
        chunk_size=5000
    ):
        if isinstance(metadata, dict):
            keys.update(k for k in metadata if _KEY.match(str(k)))
    return sorted(keys)


def group_options(study: Study) -> list[tuple[str, str]]:
    """(value, label) of every grouping the study offers, labels in the active language."""
    return [
        (SOURCE, _("Source")),
        ("split", _("Split")),
        ("coder", _("Coder")),
        *[(f"{METADATA_PREFIX}{key}", _("Metadata: %(key)s") % {"key": key}) for key in metadata_keys(study)],
    ]


def _text(value: object) -> str:
    if value is None or value == "":
        return MISSING
    return str(value)


def transcript_groups(study: Study, group_by: str) -> dict[int, str]:
    """Each transcript's group value (split or metadata field) in one query; empty for source/coder."""
    if group_by == "split":
        field = "dialogue__split"
    elif group_by.startswith(METADATA_PREFIX):
        field = f"dialogue__metadata__{group_by[len(METADATA_PREFIX):]}"
    else:
        return {}
    return {
        tid: _text(value)
        for tid, value in Transcript.objects.filter(source__study=study).values_list("id", field).iterator(
            chunk_size=10000
        )
    }


def group_function(study: Study, group_by: str) -> Callable[[CodingSummary], str] | None:
    """The group of a coding under ``group_by``; None for plain per-source results."""
    if group_by == SOURCE:
        return None
    if group_by == "coder":
        return lambda s: "consensus" if s.kind == "consensus" else s.coder
    groups = transcript_groups(study, group_by)
    return lambda s: groups.get(s.transcript_id, MISSING)


def restrict(data: StudySummaries, group_of: Callable[[CodingSummary], str] | None, group: str | None) -> StudySummaries:
    """Only the codings (and consensus) in ``group``: reliability of one group."""
    if group_of is None or group is None:
        return data
    return replace(
        data,
        codings=[s for s in data.codings if group_of(s) == group],
        consensus=[s for s in data.consensus if group_of(s) == group],
        _code_rows=None,
    )
