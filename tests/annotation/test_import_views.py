"""Import page and ``manage.py import_dialogues``: every bad input of issue 2 is refused with a message
naming the file, record and field, and leaves the database as it was; personas on every study page.

The page stores the upload and queues it (issue 13); here the worker's side runs in this process
through the task itself (``tasks.run_import.apply``), and the status page shows the outcome.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import override_settings

from annotation import actions, tasks
from annotation.models import Dialogue, ImportBatch, Turn
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

BAD = FIXTURES / "import" / "bad"

# (fixture file, what the message must contain: file name, line/record, field, problem)
BAD_CASES = [
    ("not_utf8.txt", ["not_utf8.txt", "line 3", "not valid UTF-8"]),
    ("truncated.json", ["truncated.json", "line 12", "truncated JSON"]),
    ("unknown_role.json", ["unknown_role.json", "record 2", "field 'conversations[1].from'", "unknown role 'doctor'"]),
    ("unknown_interlocutor.csv", ["unknown_interlocutor.csv", "line 3", "field 'interlocutor'", "unknown role 'coach'"]),
    ("empty_dialogue.jsonl", ["empty_dialogue.jsonl", "line 2", "field 'turns'", "dialogue 'e-2' is empty"]),
    ("no_counselor.jsonl", ["no_counselor.jsonl", "line 1", "field 'turns'", "has no counselor turn"]),
    ("duplicate_id.jsonl", ["duplicate_id.jsonl", "line 3", "field 'external_id'", "duplicate external id 'd-1'"]),
]

GOOD_JSONL = (
    '{"external_id": "d-1", "turns": [{"speaker": "client", "text": "I want to cut down."},'
    ' {"speaker": "counselor", "text": "You are thinking about cutting down."}]}\n'
)


def _state() -> tuple[int, int]:
    return Dialogue.objects.count(), Turn.objects.count()


def _upload(client, name: str, data: bytes, **extra):
    return client.post(
        "/studies/smoking/import/", {"file": SimpleUploadedFile(name, data), "format": "", "split": "", **extra}
    )


def _queued(response) -> ImportBatch:
    """The batch a successful upload queued: the answer redirects to its status page."""
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = ImportBatch.objects.order_by("-id").first()
    assert response["Location"] == f"/studies/smoking/imports/{batch.pk}/"
    assert batch.status == ImportBatch.Status.QUEUED and Path(batch.upload_path).is_file()
    return batch


def _work(batch: ImportBatch) -> str:
    """What the worker does with the batch, run here through the task itself."""
    return tasks.run_import.apply(args=[batch.pk]).get()["outcome"]


def _error_box(client, batch: ImportBatch) -> str:
    body = client.get(f"/studies/smoking/imports/{batch.pk}/").content.decode()
    return body[body.index('id="import-errors"') :].split("</div>")[0]


@pytest.fixture
def seeded(study):
    """A study that already holds one dialogue, so 'unchanged' means more than 'still empty'."""
    actions.import_dialogues(study, data=GOOD_JSONL.encode(), filename="seed.jsonl")
    return study


@pytest.mark.parametrize(("name", "expected"), BAD_CASES)
def test_bad_upload_fails_on_the_worker_and_nothing_is_saved(client_for, coordinator, seeded, name, expected):
    before = _state()
    client = client_for(coordinator)
    batch = _queued(_upload(client, name, (BAD / name).read_bytes()))
    stored = Path(batch.upload_path)
    assert _work(batch) == "failed"
    batch.refresh_from_db()
    assert batch.status == "failed" and len(batch.errors) == 1 and batch.finished_at is not None
    assert (batch.dialogue_count, batch.upload_path) == (0, "") and not stored.exists()  # upload removed
    error = _error_box(client, batch)
    for part in expected:
        assert part.replace("'", "&#x27;") in error, (part, error)
    assert "Nothing was imported." in error
    assert _state() == before


@pytest.mark.parametrize(("name", "expected"), BAD_CASES)
def test_bad_file_command_exits_1_and_saves_nothing(seeded, name, expected):
    before = _state(), ImportBatch.objects.count()
    with pytest.raises(CommandError) as exc:
        call_command("import_dialogues", "smoking", str(BAD / name))
    assert exc.value.returncode == 1
    message = str(exc.value)
    for part in expected:
        assert part in message, (part, message)
    assert "Nothing was imported." in message
    assert (_state(), ImportBatch.objects.count()) == before


def test_duplicate_external_id_against_the_database(client_for, coordinator, seeded):
    before = _state()
    data = (GOOD_JSONL.replace("d-1", "d-2") + GOOD_JSONL).encode()  # d-2 is new, d-1 is already stored
    client = client_for(coordinator)
    batch = _queued(_upload(client, "again.jsonl", data))
    assert _work(batch) == "failed"
    assert "again.jsonl: dialogue id(s) already in this study: d-1 (field external_id)" in _error_box(client, batch)
    assert _state() == before
    assert not Dialogue.objects.filter(external_id="d-2").exists()


def test_duplicate_external_id_against_the_database_command(seeded, tmp_path):
    path = tmp_path / "again.jsonl"
    path.write_text(GOOD_JSONL, encoding="utf-8")
    before = _state()
    with pytest.raises(CommandError, match=r"again\.jsonl: dialogue id\(s\) already in this study: d-1"):
        call_command("import_dialogues", "smoking", str(path))
    assert _state() == before


@override_settings(MI_MAX_IMPORT_BYTES=100)
def test_oversize_upload_is_refused_at_once(client_for, coordinator, seeded, _import_dir):
    before = _state(), ImportBatch.objects.count()
    data = (GOOD_JSONL.replace("d-1", "big") * 3).encode()
    assert len(data) > 100
    response = _upload(client_for(coordinator), "big.jsonl", data)
    assert response.status_code == 400
    assert f"big.jsonl: file is {len(data):,} bytes, over the limit of 100 bytes" in response.content.decode()
    assert (_state(), ImportBatch.objects.count()) == before  # no batch, nothing stored
    assert not _import_dir.exists() or not any(_import_dir.rglob("*.jsonl"))


def test_good_upload_shows_progress_then_counts_and_command(client_for, coordinator, study, demo_dialogues_file):
    client = client_for(coordinator)
    batch = _queued(_upload(client, "demo.jsonl", demo_dialogues_file.read_bytes()))
    page = client.get(f"/studies/smoking/imports/{batch.pk}/").content.decode()
    assert 'data-status="queued"' in page and 'hx-trigger="every 1s"' in page  # polls while not finished
    assert f'href="/studies/smoking/imports/{batch.pk}/"' in page  # the same view without JavaScript
    assert Dialogue.objects.filter(study=study).count() == 0  # nothing happens in the request
    assert _work(batch) == "done"
    partial = client.get(f"/studies/smoking/imports/{batch.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="import-status"') and "<html" not in partial
    assert 'data-status="done"' in partial and "hx-trigger" not in partial  # polling stops
    assert "Imported 8 dialogues (27 rounds, format jsonl)." in partial
    assert Dialogue.objects.filter(study=study).count() == 8
    out = io.StringIO()
    call_command("import_dialogues", "smoking", str(FIXTURES / "import" / "cpsycound"), "--split", "test", stdout=out)
    assert "Imported 3 dialogues" in out.getvalue()
    assert Dialogue.objects.filter(study=study, split="test", source_dataset="CPsyCounD").count() == 3


def test_command_names_unknown_study_and_missing_path(study, tmp_path):
    with pytest.raises(CommandError, match="No study with the slug 'nope'"):
        call_command("import_dialogues", "nope", str(tmp_path))
    missing = Path(tmp_path) / "missing.jsonl"
    with pytest.raises(CommandError, match="missing.jsonl"):
        call_command("import_dialogues", "smoking", str(missing))
    assert (*_state(), ImportBatch.objects.count()) == (0, 0, 0)


def test_script_in_text_is_stored_as_text_and_escaped(client_for, coordinator, study):
    data = (
        b'{"external_id": "x<i>", "turns": [{"speaker": "client", "text": "<script>alert(1)</script>"},'
        b' {"speaker": "counselor", "text": "<img src=x onerror=alert(2)>"}]}\n'
    )
    client = client_for(coordinator)
    batch = _queued(_upload(client, "<b>evil</b>.jsonl", data))
    assert _work(batch) == "done"
    dialogue = Dialogue.objects.get(study=study)
    assert dialogue.external_id == "x<i>"
    assert list(dialogue.turns.values_list("text", flat=True)) == [
        "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    ]
    pages = [
        "/studies/smoking/",
        "/studies/smoking/dialogues/",
        f"/studies/smoking/dialogues/{dialogue.pk}/",
        f"/studies/smoking/imports/{batch.pk}/",
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert "<script>alert(1)" not in body and "<img src=x" not in body and "<b>evil" not in body, url
        assert "<i>" not in body.split("<main>")[1], url
    detail = client.get(f"/studies/smoking/dialogues/{dialogue.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail


# --- personas on every study page ------------------------------------------------------------------

STUDY_PAGES = [
    "/studies/smoking/",
    "/studies/smoking/members/",
    "/studies/smoking/import/",
    "/studies/smoking/split/",
    "/studies/smoking/dialogues/",
    "/studies/smoking/transcripts/",
    "/studies/smoking/rounds/",
    "/studies/smoking/rounds/new/",
    "/studies/smoking/rounds/annomi/",
]
COORDINATOR_ONLY = [url for url in STUDY_PAGES if url != "/studies/smoking/"]


@pytest.mark.parametrize("url", STUDY_PAGES)
def test_outsider_gets_404_on_every_study_page(client_for, outsider, study, url):
    assert client_for(outsider).get(url).status_code == 404


@pytest.mark.parametrize("url", COORDINATOR_ONLY)
def test_coder_gets_403_on_coordinator_pages(client_for, coder, study, url):
    assert client_for(coder).get(url).status_code == 403


@pytest.mark.parametrize("url", STUDY_PAGES)
def test_coordinator_opens_every_study_page(client_for, coordinator, study, url):
    assert client_for(coordinator).get(url).status_code == 200


def test_coder_cannot_import(client_for, coder, study, demo_dialogues_file):
    response = _upload(client_for(coder), "demo.jsonl", demo_dialogues_file.read_bytes())
    assert response.status_code == 403
    assert (*_state(), ImportBatch.objects.count()) == (0, 0, 0)


def test_outsider_cannot_import(client_for, outsider, study, demo_dialogues_file):
    response = _upload(client_for(outsider), "demo.jsonl", demo_dialogues_file.read_bytes())
    assert response.status_code == 404
    assert (*_state(), ImportBatch.objects.count()) == (0, 0, 0)
