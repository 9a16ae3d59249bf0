"""Samples for the machine coder from AnnoMI-full's CSV: the benchmark of docs/machine_coding.md.

Pure (pandas, no Django). Two tasks, both on therapist utterances (one CSV row = one utterance):

* ``"main"`` — AnnoMI's main therapist behaviour: ``question``, ``reflection``, ``therapist_input``,
  ``other``;
* ``"reflection"`` — the reflection slot on utterances whose main behaviour is a reflection:
  ``CR`` (complex) or ``SR`` (simple; also the one reflection without a subtype, as the importer
  counts it — docs/miti.md, *Labels imported from AnnoMI*).

**One annotation per utterance.** 126 transcripts have one annotator; 7 were coded by 10 annotators
each (their rows repeat per annotator). Training on ten copies of one utterance, possibly with ten
different labels, would weigh those 7 transcripts tenfold and put the same utterance on both sides of
nothing useful, so each transcript keeps the annotations of its lowest ``annotator_id`` only: 9,699
utterances, 4,882 of them the therapist's.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from inference.machine_coding.classifier import UtteranceSample

Task = Literal["main", "reflection"]


def load_annomi(path: Path, task: Task) -> tuple[list[UtteranceSample], list[str]]:
    """``(samples, labels)`` of one task, in transcript and utterance order."""
    frame = pd.read_csv(path)
    first = frame.groupby("transcript_id")["annotator_id"].transform("min")
    frame = frame[frame["annotator_id"] == first].sort_values(["transcript_id", "utterance_id"])
    samples: list[UtteranceSample] = []
    labels: list[str] = []
    for transcript, rows in frame.groupby("transcript_id", sort=True):
        records = rows.to_dict("records")
        previous_client = ""
        index = 0
        while index < len(records):
            record = records[index]
            if record["interlocutor"] != "therapist":
                # Consecutive client rows are one client turn, as consecutive therapist rows are one volley.
                if index > 0 and records[index - 1]["interlocutor"] != "therapist":
                    previous_client = f"{previous_client} {_text(record['utterance_text'])}".strip()
                else:
                    previous_client = _text(record["utterance_text"])
                index += 1
                continue
            # A volley: the consecutive therapist rows up to the next client row.
            end = index
            while end < len(records) and records[end]["interlocutor"] == "therapist":
                end += 1
            volley = records[index:end]
            for position, row in enumerate(volley):
                label = _label(row, task)
                if label is None:
                    continue
                samples.append(
                    UtteranceSample(
                        text=_text(row["utterance_text"]),
                        previous_client=previous_client,
                        position=position,
                        volley_size=len(volley),
                        group=str(transcript),
                    )
                )
                labels.append(label)
            index = end
    return samples, labels


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)  # type: ignore[call-overload]


def _label(row: Mapping[Hashable, Any], task: Task) -> str | None:
    behaviour = str(row["main_therapist_behaviour"])
    if task == "main":
        return behaviour
    if behaviour != "reflection":
        return None
    return "CR" if str(row["reflection_subtype"]) == "complex" else "SR"
