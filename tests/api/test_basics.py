"""Tokens, studies, members, imports and the error body, through the API with personas."""

from __future__ import annotations

import pytest

from annotation.accounts.tokens import token_digest
from annotation.models import ApiToken, Dialogue, ImportBatch, Membership, Study
from tests.conftest import FIXTURES, PASSWORD

pytestmark = pytest.mark.django_db


def test_token_is_stored_hashed_and_works(coder, api):
    from annotation import actions

    token, raw = actions.create_token(coder, "laptop")
    assert raw.startswith("mip_") and raw not in (token.digest, token.prefix)
    assert token.digest == token_digest(raw) and raw.startswith(token.prefix)
    client = api("anonymous")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/me/").json()["username"] == "coder"
    actions.revoke_token(coder, token.pk)
    response = client.get("/api/me/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked token.", "errors": {}}


def test_mint_token_with_password(coder, api):
    response = api("anonymous").post("/api/tokens/", {"username": "coder", "password": PASSWORD, "name": "job"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "job" and body["token"].startswith(body["prefix"])
    assert ApiToken.objects.get(pk=body["id"]).digest == token_digest(body["token"])
    # A stale token in the header does not get in the way of minting with a password.
    stale = api("anonymous")
    stale.credentials(HTTP_AUTHORIZATION="Bearer mip_revoked-or-mistyped")
    assert stale.post("/api/tokens/", {"username": "coder", "password": PASSWORD}, format="json").status_code == 201
    assert stale.get("/api/tokens/").status_code == 401
    wrong = api("anonymous").post("/api/tokens/", {"username": "coder", "password": "nope"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Invalid username or password.",
                            "errors": {"non_field_errors": ["Invalid username or password."]}}


def test_token_minting_is_throttled(coder, api, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    # DRF binds the rates to the class at import; lower the "auth" rate for this test only.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    client = api("anonymous")
    responses = [client.post("/api/tokens/", {"username": "coder", "password": "bad"}, format="json") for _ in range(4)]
    assert [r.status_code for r in responses] == [400, 400, 400, 429]
    assert responses[-1].json()["detail"].startswith("Request was throttled.")


def test_revoke_own_token_only(coder, coder2, api, tokens):
    mine = ApiToken.objects.filter(user=coder).get()
    assert api("coder2").delete(f"/api/tokens/{mine.pk}/").status_code == 404
    assert api("coder").delete(f"/api/tokens/{mine.pk}/").status_code == 204
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None


def test_token_pages(client_for, coder):
    client = client_for(coder)
    response = client.post("/account/tokens/", {"name": "notebook"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=coder, name="notebook")
    raw = response.context["new_token"]
    assert token.digest == token_digest(raw) and raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    # The raw token is never shown again.
    assert raw not in client.get("/account/").content.decode()
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_token_page_refuses_empty_name_and_others_tokens(client_for, coder, coder2):
    from annotation import actions

    other, _raw = actions.create_token(coder2, "theirs")
    client = client_for(coder)
    assert client.post("/account/tokens/", {"name": "  "}).status_code == 400
    assert client.post(f"/account/tokens/{other.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None


def test_study_list_shows_role(study, api):
    body = api("coder").get("/api/studies/").json()
    assert body["count"] == 1 and body["results"][0]["slug"] == "smoking" and body["results"][0]["role"] == "coder"
    assert api("outsider").get("/api/studies/").json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_create_study_and_members(coordinator, coder, api):
    client = api("coordinator")
    response = client.post("/api/studies/", {"name": "Diet", "change_goal": "eat less sugar", "language": "en"}, format="json")
    assert response.status_code == 201 and response.json()["slug"] == "diet" and response.json()["counts"]["dialogues"] == 0
    assert client.post("/api/studies/diet/members/", {"username": "coder", "role": "coder"}, format="json").status_code == 201
    assert Membership.objects.get(study__slug="diet", user=coder).role == "coder"
    last = client.delete("/api/studies/diet/members/coordinator/")
    assert last.status_code == 400
    assert "at least one coordinator" in last.json()["detail"]
    denied = api("coder").post("/api/studies/", {"name": "X", "change_goal": "y"}, format="json")
    assert denied.status_code == 403 and not Study.objects.filter(name="X").exists()


def test_import_file_and_error_message_as_on_the_page(study, api, client_for, coordinator):
    from annotation import tasks

    client = api("coordinator")
    with open(FIXTURES / "import" / "dialogues.jsonl", "rb") as handle:
        response = client.post(
            "/api/studies/smoking/imports/", {"file": handle, "split": "test", "merge_consecutive": "true"},
            format="multipart",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and response["Location"] == body["status_url"]
    assert body["status_url"] == f"/api/studies/smoking/imports/{body['id']}/"
    assert tasks.run_import.apply(args=[body["id"]]).get() == {"batch": body["id"], "outcome": "done"}
    done = client.get(body["status_url"]).json()
    assert (done["status"], done["progress"], done["attempts"]) == ("done", 1.0, 1)
    assert done["dialogue_count"] == Dialogue.objects.filter(study=study, split="test").count() == 3
    assert any("merged two client turns in a row" in w for w in done["warnings"])

    bad = FIXTURES / "import" / "bad" / "unknown_role.json"
    with open(bad, "rb") as handle:
        api_response = client.post("/api/studies/smoking/imports/", {"file": handle}, format="multipart")
    with open(bad, "rb") as handle:
        page = client_for(coordinator).post("/studies/smoking/import/", {"file": handle})
    assert api_response.status_code == 202 and page.status_code == 302
    api_batch = api_response.json()["id"]
    page_batch = ImportBatch.objects.filter(study=study).exclude(pk__in=[body["id"], api_batch]).get().pk
    for batch_id in (api_batch, page_batch):
        assert tasks.run_import.apply(args=[batch_id]).get()["outcome"] == "failed"
    failed = client.get(f"/api/studies/smoking/imports/{api_batch}/").json()
    (message,) = failed["errors"]
    assert failed["status"] == "failed" and "unknown_role.json, record 2" in message
    status_page = client_for(coordinator).get(page["Location"]).content.decode()
    assert message in status_page.replace("&#x27;", "'").replace("&quot;", '"')
    assert Dialogue.objects.filter(study=study).count() == 3


def test_dialogues_are_for_coordinators(study, api, demo_dialogues_file):
    from annotation import actions

    actions.import_dialogues(study, path=str(demo_dialogues_file))
    body = api("coordinator").get("/api/studies/smoking/dialogues/?split=test&limit=2").json()
    assert body["count"] == 4 and len(body["results"]) == 2 and "offset=2" in body["next"]
    first = body["results"][0]["id"]
    detail = api("coordinator").get(f"/api/studies/smoking/dialogues/{first}/").json()
    assert detail["turns"][0]["speaker"] in {"client", "counselor", "system"}
    assert api("coder").get("/api/studies/smoking/dialogues/").status_code == 403
    assert api("outsider").get("/api/studies/smoking/dialogues/").status_code == 404


def test_unknown_api_path_is_a_json_404(api):
    response = api("coder").get("/api/no/such/thing/")
    assert response.status_code == 404 and response.json() == {"detail": "No such API endpoint.", "errors": {}}


def test_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "MI Platform API"
    docs = client.get("/api/docs/")
    html = docs.content.decode()
    assert docs.status_code == 200 and "swagger-ui" in html
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
