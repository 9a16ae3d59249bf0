"""Background imports (issue 13): the request stores and queues, the task claims, parses and writes once.

The worker's side runs in this process here (the action, or the task through ``apply``); the real
worker, killed mid-import, is in ``test_import_worker.py``.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app
from celery.exceptions import Retry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from annotation import actions, parsers, tasks
from annotation.actions import imports as import_actions
from annotation.models import Dialogue, ImportBatch, Turn
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

CPSYCOUND = FIXTURES / "import" / "cpsycound"
OPENAI = (FIXTURES / "import" / "openai_chat.jsonl").read_bytes()


def _rows(study) -> list[tuple]:
    return list(Dialogue.objects.filter(study=study).order_by("id").values_list("id", "external_id", "round_count"))


def test_upload_is_stored_and_the_task_sent_by_name_after_commit(
    study, coordinator, monkeypatch, django_capture_on_commit_callbacks, _import_dir
):
    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = actions.request_import(
            study, upload=SimpleUploadedFile("chat.jsonl", OPENAI), filename="chat.jsonl", split="test",
            options=parsers.ImportOptions(merge_consecutive=True), created_by=coordinator,
        )
        assert sent == []  # nothing leaves before the batch is committed
    assert batch.status == "queued" and batch.progress == 0.0 and batch.attempts == 0
    stored = Path(batch.upload_path)
    assert stored.read_bytes() == OPENAI and stored.is_relative_to(_import_dir)
    assert batch.options == {
        "format": "", "split": "test", "client_prefix": "", "counselor_prefix": "", "merge_consecutive": True,
        "dialogue_column": "dialogue_id", "speaker_column": "speaker", "text_column": "text",
    }
    for callback in callbacks:
        callback()
    assert sent == [("annotation.run_import", [batch.pk], "cpu")]
    assert Dialogue.objects.count() == 0


def test_the_task_imports_once_and_a_redelivery_changes_nothing(study, coordinator):
    batch = actions.request_import(study, data=OPENAI, filename="chat.jsonl", created_by=coordinator)
    stored = Path(batch.upload_path)
    assert tasks.run_import.apply(args=[batch.pk]).get() == {"batch": batch.pk, "outcome": "done"}
    batch.refresh_from_db()
    assert (batch.status, batch.format, batch.dialogue_count, batch.round_count) == ("done", "openai", 2, 3)
    assert batch.attempts == 1 and batch.progress == 1.0 and batch.upload_path == "" and not stored.exists()
    assert batch.started_at <= batch.finished_at
    before = _rows(study), Turn.objects.count(), batch.finished_at
    # the broker delivers the task again (e.g. the ack was lost): it finds the batch done
    assert tasks.run_import.apply(args=[batch.pk]).get() == {"batch": batch.pk, "outcome": "finished"}
    batch.refresh_from_db()
    assert (_rows(study), Turn.objects.count(), batch.finished_at) == before
    assert batch.attempts == 1
    assert actions.run_import(10**9) == "gone"


def test_a_live_claim_is_left_alone_and_a_stale_one_taken_over(study, settings):
    settings.MI_IMPORT_CLAIM_STALE_SECONDS = 60
    batch = actions.request_import(study, data=OPENAI, filename="chat.jsonl")
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", claim_token="a" * 32, claimed_at=timezone.now(), attempts=1
    )
    assert actions.run_import(batch.pk) == "busy"
    with pytest.raises(Retry) as retry:  # the task looks again once the claim could have gone stale
        tasks.run_import.apply(args=[batch.pk])
    assert retry.value.when == 60
    assert Dialogue.objects.count() == 0
    # its worker stopped reporting 61 s ago: presumed dead, the claim is taken over
    ImportBatch.objects.filter(pk=batch.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    assert actions.run_import(batch.pk) == "done"
    batch.refresh_from_db()
    assert (batch.status, batch.attempts, batch.dialogue_count) == ("done", 2, 2)
    assert batch.claim_token != "a" * 32


def test_a_worker_whose_claim_was_taken_over_writes_nothing(study, monkeypatch):
    batch = actions.request_import(study, data=OPENAI, filename="chat.jsonl")
    real_parse = parsers.parse_bytes

    def parse_then_lose_the_claim(*args, **kwargs):
        result = real_parse(*args, **kwargs)
        # meanwhile another worker presumed this one dead and claimed the batch
        ImportBatch.objects.filter(pk=batch.pk).update(claim_token="b" * 32)
        return result

    monkeypatch.setattr(import_actions.parsers, "parse_bytes", parse_then_lose_the_claim)
    assert actions.run_import(batch.pk) == "lost"
    batch.refresh_from_db()
    assert (batch.status, batch.claim_token) == ("running", "b" * 32)
    assert Dialogue.objects.count() == 0 and Turn.objects.count() == 0
    assert Path(batch.upload_path).exists()  # the new owner still needs it


def test_progress_is_reported_per_file_while_parsing(study, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(CPSYCOUND.glob("session_*.txt")):
            archive.write(path, f"Data/{path.name}")
    batch = actions.request_import(study, data=buffer.getvalue(), filename="sessions.zip")
    seen: list[tuple[int, int, float, str]] = []
    original = import_actions._Progress.parsed

    def record(self, done: int, total: int) -> None:
        original(self, done, total)
        now = ImportBatch.objects.get(pk=batch.pk)
        seen.append((done, total, now.progress, now.status))

    monkeypatch.setattr(import_actions._Progress, "parsed", record)
    assert actions.run_import(batch.pk) == "done"
    assert [(d, t, s) for d, t, _, s in seen] == [(1, 3, "running"), (2, 3, "running"), (3, 3, "running")]
    assert [round(p, 3) for *_, p, _ in seen] == [0.233, 0.467, 0.7]
    batch.refresh_from_db()
    assert (batch.dialogue_count, batch.round_count, batch.duplicates) == (3, 6, {"session_10": "session_2"})


def test_a_lost_upload_fails_the_batch_saying_why(study):
    batch = actions.request_import(study, data=OPENAI, filename="chat.jsonl")
    Path(batch.upload_path).unlink()
    assert actions.run_import(batch.pk) == "failed"
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None
    assert batch.errors == ["chat.jsonl: the stored upload cannot be read (No such file or directory); upload the "
                            "file again."]


def test_cheap_checks_refuse_at_once_and_store_nothing(study, settings, _import_dir):
    with pytest.raises(actions.ActionError, match="name both the client and the counselor prefix"):
        actions.request_import(study, data=OPENAI, filename="chat.jsonl",
                               options=parsers.ImportOptions(client_prefix="求助者"))
    with pytest.raises(actions.ActionError, match="Unknown split 'dev'"):
        actions.request_import(study, data=OPENAI, filename="chat.jsonl", split="dev")
    settings.MI_MAX_IMPORT_BYTES = 10
    with pytest.raises(parsers.ImportFormatError, match="over the limit of 10 bytes"):
        actions.request_import(study, data=OPENAI, filename="chat.jsonl")
    assert ImportBatch.objects.count() == 0
    assert not _import_dir.exists() or not any(_import_dir.iterdir())


def test_command_async_queues_a_folder_as_one_zip_and_a_file_with_prefixes(study, tmp_path):
    out = io.StringIO()
    call_command("import_dialogues", "smoking", str(CPSYCOUND), "--async", "--split", "test", stdout=out)
    folder_batch = ImportBatch.objects.get()
    assert out.getvalue().startswith(f"Queued import {folder_batch.pk} of {CPSYCOUND} into smoking;")
    assert f"/studies/smoking/imports/{folder_batch.pk}/" in out.getvalue()
    assert zipfile.is_zipfile(folder_batch.upload_path) and Dialogue.objects.count() == 0
    assert actions.run_import(folder_batch.pk) == "done"
    folder_batch.refresh_from_db()
    # the same dialogues, names and warnings as a synchronous import of the folder
    assert (folder_batch.format, folder_batch.dialogue_count, folder_batch.round_count) == ("cpsycound", 3, 6)
    assert Dialogue.objects.filter(study=study, split="test").count() == 3
    assert folder_batch.warnings == ["dialogue 'session_10' has the same content as 'session_2'"]

    transcript = tmp_path / "e.json"
    transcript.write_text('["访客：我很累。", "陪伴者：你很累。"]', encoding="utf-8")
    call_command("import_dialogues", "smoking", str(transcript), "--async", "--client-prefix", "访客",
                 "--counselor-prefix", "陪伴者", stdout=io.StringIO())
    file_batch = ImportBatch.objects.exclude(pk=folder_batch.pk).get()
    assert actions.run_import(file_batch.pk) == "done"
    assert Dialogue.objects.get(import_batch=file_batch).metadata == {
        "speaker_prefixes": {"client": "访客", "counselor": "陪伴者"}
    }


def test_command_sync_takes_the_new_options(study, tmp_path):
    out = io.StringIO()
    call_command("import_dialogues", "smoking", str(FIXTURES / "import" / "dialogues.jsonl"), "--merge-consecutive",
                 stdout=out)
    assert "Imported 3 dialogues (4 rounds, format jsonl)" in out.getvalue()
    assert "merged two client turns in a row" in out.getvalue()
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.attempts, batch.options["merge_consecutive"]) == ("done", 1, True)


# --- who may follow an import -----------------------------------------------------------------------


@pytest.fixture
def queued(study, coordinator):
    return actions.request_import(study, data=OPENAI, filename="chat.jsonl", created_by=coordinator)


def test_status_page_and_api_for_personas(client_for, api_client_for, queued, coordinator, coder, outsider,
                                          other_study):
    page, endpoint = f"/studies/smoking/imports/{queued.pk}/", f"/api/studies/smoking/imports/{queued.pk}/"
    assert client_for(coordinator).get(page).status_code == 200
    assert api_client_for(coordinator).get(endpoint).json()["status"] == "queued"
    assert client_for(coder).get(page).status_code == 403
    assert api_client_for(coder).get(endpoint).status_code == 403
    assert client_for(outsider).get(page).status_code == 404
    assert api_client_for(outsider).get(endpoint).status_code == 404
    elsewhere = actions.request_import(other_study, data=OPENAI, filename="chat.jsonl")
    assert client_for(coordinator).get(f"/studies/smoking/imports/{elsewhere.pk}/").status_code == 404
    assert api_client_for(coordinator).get(f"/api/studies/smoking/imports/{elsewhere.pk}/").status_code == 404


def test_api_refuses_half_a_prefix_pair(api_client_for, coordinator, study):
    response = api_client_for(coordinator).post(
        "/api/studies/smoking/imports/",
        {"file": SimpleUploadedFile("e.json", b"[]"), "client_prefix": "求助者"}, format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"counselor_prefix": ["Name both the client and the counselor prefix, or neither."]}
    assert ImportBatch.objects.count() == 0


@pytest.fixture
def api_client_for():
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
