"""Small things a first visitor notices: the icon, plurals, no server paths on pages, admin names."""

from __future__ import annotations

import json

import pytest

from annotation import actions
from annotation.models import AssignmentSummary, ImportBatch

pytestmark = pytest.mark.django_db

ONE_DIALOGUE = (
    json.dumps(
        {
            "external_id": "one",
            "turns": [{"speaker": "client", "text": "Hi."}, {"speaker": "counselor", "text": "Hello."}],
        }
    )
    + "\n"
).encode()


def test_the_favicon_is_linked_and_served(client, coordinator, client_for):
    page = client_for(coordinator).get("/studies/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, "/static/favicon.svg")
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)


def test_pages_show_an_imported_files_name_not_its_server_path(study, coordinator, client_for, demo_dialogues_file):
    batch = actions.import_dialogues(study, path=str(demo_dialogues_file), created_by=coordinator)
    assert batch.filename == str(demo_dialogues_file)  # stored as given (the API and the audit trail keep it)
    folder = str(demo_dialogues_file.parent)
    web = client_for(coordinator)
    for url in (
        "/studies/smoking/",
        "/studies/smoking/import/",
        f"/studies/smoking/imports/{batch.pk}/",
    ):
        page = web.get(url).content.decode()
        assert demo_dialogues_file.name in page, url
        assert folder not in page, url


def test_one_dialogue_of_one_round_is_said_in_the_singular(study, coordinator, client_for):
    batch = actions.import_dialogues(study, data=ONE_DIALOGUE, filename="one.jsonl", created_by=coordinator)
    page = client_for(coordinator).get(f"/studies/smoking/imports/{batch.pk}/").content.decode()
    assert "Imported 1 dialogue (1 round, format jsonl)." in page


def test_one_export_row_is_said_in_the_singular(study, coordinator, client_for):
    from evaluation.models import ExportJob

    ExportJob.objects.create(study=study, requested_by=coordinator, kind="codes", format="csv", status="done", rows=1)
    page = client_for(coordinator).get("/studies/smoking/results/exports/").content.decode()
    assert "· 1 row<" in page or "· 1 row " in page
    assert "1 rows" not in page


def test_the_admin_names_plurals_properly(admin_user, client_for):
    assert ImportBatch._meta.verbose_name_plural == "import batches"
    assert AssignmentSummary._meta.verbose_name_plural == "assignment summaries"
    page = client_for(admin_user).get("/admin/").content.decode()
    assert "Import batches" in page and "batchs" not in page
    assert "summarys" not in page
