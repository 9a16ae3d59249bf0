"""Import page and ``manage.py import_dialogues``: every bad input of issue 2 is refused with a message
naming the file, record and field, and leaves the database as it was; personas on every study page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import override_settings

from annotation import actions
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


def _state() -> tuple[int, int, int]:
    return Dialogue.objects.count(), Turn.objects.count(), ImportBatch.objects.count()


def _upload(client, name: str, data: bytes, **extra):
    return client.post(
        "/studies/smoking/import/", {"file": SimpleUploadedFile(name, data), "format": "", "split": "", **extra}
    )


@pytest.fixture
def seeded(study):
    """A study that already holds one dialogue, so 'unchanged' means more than 'still empty'."""
    actions.import_dialogues(study, data=GOOD_JSONL.encode(), filename="seed.jsonl")
    return study


@pytest.mark.parametrize(("name", "expected"), BAD_CASES)
def test_bad_upload_is_refused_and_nothing_is_saved(client_for, coordinator, seeded, name, expected):
    before = _state()
    response = _upload(client_for(coordinator), name, (BAD / name).read_bytes())
    assert response.status_code == 400
    body = response.content.decode()
    error = body[body.index('id="import-error"') :].split("</div>")[0]
    for part in expected:
        assert part.replace("'", "&#x27;") in error, (part, error)
    assert _state() == before


@pytest.mark.parametrize(("name", "expected"), BAD_CASES)
def test_bad_file_command_exits_1_and_saves_nothing(seeded, name, expected):
    before = _state()
    with pytest.raises(CommandError) as exc:
        call_command("import_dialogues", "smoking", str(BAD / name))
    assert exc.value.returncode == 1
    message = str(exc.value)
    for part in expected:
        assert part in message, (part, message)
    assert "Nothing was imported." in message
    assert _state() == before


def test_duplicate_external_id_against_the_database(client_for, coordinator, seeded):
    before = _state()
    data = (GOOD_JSONL.replace("d-1", "d-2") + GOOD_JSONL).encode()  # d-2 is new, d-1 is already stored
    response = _upload(client_for(coordinator), "again.jsonl", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "again.jsonl: dialogue id(s) already in this study: d-1 (field external_id)" in body
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
def test_oversize_upload_is_refused(client_for, coordinator, seeded):
    before = _state()
    data = (GOOD_JSONL.replace("d-1", "big") * 3).encode()
    assert len(data) > 100
    response = _upload(client_for(coordinator), "big.jsonl", data)
    assert response.status_code == 400
    assert f"big.jsonl: file is {len(data):,} bytes, over the limit of 100 bytes" in response.content.decode()
    assert _state() == before


def test_good_upload_and_command(client_for, coordinator, study, demo_dialogues_file):
    response = _upload(client_for(coordinator), "demo.jsonl", demo_dialogues_file.read_bytes())
    assert response.status_code == 302 and response["Location"] == "/studies/smoking/"
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
    assert _state() == (0, 0, 0)


def test_script_in_text_is_stored_as_text_and_escaped(client_for, coordinator, study):
    data = (
        b'{"external_id": "x<i>", "turns": [{"speaker": "client", "text": "<script>alert(1)</script>"},'
        b' {"speaker": "counselor", "text": "<img src=x onerror=alert(2)>"}]}\n'
    )
    client = client_for(coordinator)
    assert _upload(client, "<b>evil</b>.jsonl", data).status_code == 302
    dialogue = Dialogue.objects.get(study=study)
    assert dialogue.external_id == "x<i>"
    assert list(dialogue.turns.values_list("text", flat=True)) == [
        "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    ]
    pages = [
        "/studies/smoking/",
        "/studies/smoking/dialogues/",
        f"/studies/smoking/dialogues/{dialogue.pk}/",
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
    assert _state() == (0, 0, 0)


def test_outsider_cannot_import(client_for, outsider, study, demo_dialogues_file):
    response = _upload(client_for(outsider), "demo.jsonl", demo_dialogues_file.read_bytes())
    assert response.status_code == 404
    assert _state() == (0, 0, 0)
