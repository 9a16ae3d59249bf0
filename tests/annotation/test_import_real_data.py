"""The real corpora (../shared/data) through the import action: counts from the data README.

Skipped, with the reason, when the shared data folder is absent. The time is printed, never asserted
(speed is measured by bench scripts, not by timed tests).
"""

from __future__ import annotations

import time

import pytest

from annotation import actions
from annotation.models import Dialogue, ImportBatch, Turn
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db


def test_whole_cpsycound_folder(study):
    folder = shared_data("CPsyCounD", "Data")
    started = time.perf_counter()
    batch = actions.import_dialogues(study, path=str(folder))
    seconds = time.perf_counter() - started
    print(f"CPsyCounD folder import: {batch.dialogue_count} dialogues in {seconds:.1f} s")
    assert batch.format == "cpsycound"
    assert batch.dialogue_count == 3134
    assert Dialogue.objects.filter(study=study).count() == 3134
    assert batch.round_count == 24590
    assert sum(Dialogue.objects.filter(study=study).values_list("round_count", flat=True)) == 24590
    # Duplicates are flagged, not dropped. The README's 4 byte-identical files are one group: the
    # first (case_1762) stays the original and the 3 later copies point at it.
    assert batch.duplicates == {"case_1921": "case_1762", "case_2274": "case_1762", "case_2301": "case_1762"}
    group = {"case_1762", *batch.duplicates}
    assert group == {"case_1762", "case_1921", "case_2274", "case_2301"}
    flagged = dict(
        Dialogue.objects.filter(study=study, duplicate_of__isnull=False).values_list(
            "external_id", "duplicate_of__external_id"
        )
    )
    assert flagged == batch.duplicates
    assert Turn.objects.filter(dialogue__study=study).count() > 2 * 24590


def test_annomi_simple(study):
    path = shared_data("AnnoMI", "AnnoMI-simple.csv")
    started = time.perf_counter()
    batch = actions.import_dialogues(study, path=str(path))
    print(f"AnnoMI simple import: {time.perf_counter() - started:.1f} s")
    assert batch.format == "annomi"
    assert batch.dialogue_count == 133
    assert ImportBatch.objects.get(pk=batch.pk).dialogue_count == 133
    assert Dialogue.objects.filter(study=study, source_dataset="AnnoMI").count() == 133


def test_whole_cpsycound_folder_through_the_background_import(study):
    """The folder, packed into one zip as ``import_dialogues --async`` does, imported by the task's action."""
    folder = shared_data("CPsyCounD", "Data")
    batch = actions.request_import(study, path=str(folder))
    assert actions.run_import(batch.pk) == "done"
    batch.refresh_from_db()
    print(f"CPsyCounD background import: {(batch.finished_at - batch.started_at).total_seconds():.1f} s")
    assert (batch.status, batch.format, batch.dialogue_count, batch.round_count) == ("done", "cpsycound", 3134, 24590)
    assert batch.duplicates == {"case_1921": "case_1762", "case_2274": "case_1762", "case_2301": "case_1762"}
    assert Turn.objects.filter(dialogue__study=study).count() > 2 * 24590
    # messages name the files as a synchronous import of the folder does
    assert sum(f"{folder}/case_983.txt" in w or f"{folder}/case_1408.txt" in w for w in batch.warnings) == 2


def test_annomi_full_through_the_background_import(study):
    path = shared_data("AnnoMI", "AnnoMI-full.csv")
    batch = actions.request_import(study, data=path.read_bytes(), filename="AnnoMI-full.csv")
    assert actions.run_import(batch.pk) == "done"
    batch.refresh_from_db()
    assert (batch.format, batch.dialogue_count) == ("annomi", 133)
    assert Dialogue.objects.filter(study=study, source_dataset="AnnoMI").count() == 133
