"""A coder's queue and workspace over the API: codes, globals, undo, submit, the 409 rule and blinding."""

from __future__ import annotations

import json
import re

import pytest

from annotation import miti
from annotation.models import Assignment, AuditEvent, GlobalRating, UtteranceCode
from tests.api.conftest import CHECKPOINT_A, CHECKPOINT_B, MODEL_A, MODEL_B

pytestmark = pytest.mark.django_db


def first_assignment(user) -> Assignment:
    return Assignment.objects.filter(coder=user, kind="coding").order_by("position").first()


def test_queue_lists_own_assignments_in_order(world, coder, api):
    body = api("coder").get("/api/queue/").json()
    mine = list(Assignment.objects.filter(coder=coder).order_by("position").values_list("id", flat=True))
    assert body["count"] == len(mine) == 12  # 4 dialogues × 3 sources, all double-coded
    assert [row["id"] for row in body["results"]] == mine
    assert body["results"][0]["progress"] == {
        "coded": 0, "total": body["results"][0]["progress"]["total"], "globals_set": 0, "globals_total": 4,
        "percent": 0, "complete": False,
    }


def test_workspace_is_the_coding_sheet(world, coder, api):
    assignment = first_assignment(coder)
    body = api("coder").get(f"/api/assignments/{assignment.pk}/").json()
    assert body["blind_code"] == assignment.transcript.blind_code
    assert body["version"] == 0 and body["status"] == "pending" and body["editable"] is True
    assert body["globals"] == {key: None for key in miti.GLOBAL_KEYS}
    n_utterances = sum(len(v["utterances"]) for v in body["volleys"])
    assert n_utterances == body["progress"]["total"] > 0
    assert body["volleys"][0]["number"] == 1 and body["volleys"][0]["utterances"][0]["code"] is None


def test_other_coders_assignment_is_404(world, coder, api):
    assignment = first_assignment(coder)
    for persona in ("coder2", "coordinator", "outsider", "admin"):
        response = api(persona).get(f"/api/assignments/{assignment.pk}/")
        assert response.status_code == 404, persona
        assert response.json() == {"detail": "No such assignment.", "errors": {}}
    written = api("coder2").post(f"/api/assignments/{assignment.pk}/codes/",
                                 {"utterance": 1, "code": "GI", "version": 0}, format="json")
    assert written.status_code == 404 and not UtteranceCode.objects.filter(assignment=assignment).exists()


def test_stale_version_gets_409_and_keeps_the_first_value(world, coder, api):
    assignment = first_assignment(coder)
    client = api("coder")
    sheet = client.get(f"/api/assignments/{assignment.pk}/").json()
    utterance = sheet["volleys"][0]["utterances"][0]["id"]
    first = client.post(f"/api/assignments/{assignment.pk}/codes/",
                        {"utterance": utterance, "code": "Q", "version": 0}, format="json")
    assert first.status_code == 200 and first.json()["version"] == 1
    assert first.json()["tally"]["counts"] == {"Q": 1}
    # A second tab still holding version 0:
    stale = client.post(f"/api/assignments/{assignment.pk}/codes/",
                        {"utterance": utterance, "code": "GI", "version": 0}, format="json")
    assert stale.status_code == 409
    body = stale.json()
    assert body["current_version"] == 1
    assert body["detail"].startswith("This assignment was changed in another tab or device")
    assert body["errors"] == {"version": [body["detail"]]}
    assert utterance == 1  # its number in the transcript, not a database id
    assert UtteranceCode.objects.get(assignment=assignment).code == "Q"
    assert Assignment.objects.get(pk=assignment.pk).version == 1


def test_code_everything_submit_then_read_only(world, coder, api):
    assignment = first_assignment(coder)
    client = api("coder")
    url = f"/api/assignments/{assignment.pk}/"
    sheet = client.get(url).json()
    version = sheet["version"]
    early = client.post(url + "submit/", {"version": version}, format="json")
    assert early.status_code == 400 and early.json()["detail"].startswith("Cannot submit yet:")
    for volley in sheet["volleys"]:
        for utterance in volley["utterances"]:
            saved = client.post(url + "codes/", {"utterance": utterance["id"], "code": "SR", "version": version},
                                format="json")
            assert saved.status_code == 200, saved.json()
            version = saved.json()["version"]
    for scale in miti.GLOBAL_KEYS:
        saved = client.post(url + "globals/", {"scale": scale, "value": 4, "version": version}, format="json")
        assert saved.status_code == 200
        version = saved.json()["version"]
    undone = client.post(url + "undo/", {"version": version}, format="json")
    assert undone.status_code == 200 and undone.json()["progress"]["globals_set"] == 3
    version = undone.json()["version"]
    version = client.post(url + "globals/", {"scale": miti.GLOBAL_KEYS[-1], "value": 2, "version": version},
                          format="json").json()["version"]
    submitted = client.post(url + "submit/", {"version": version}, format="json")
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    assert GlobalRating.objects.get(assignment=assignment, scale=miti.GLOBAL_KEYS[-1]).value == 2
    again = client.post(url + "codes/", {"utterance": sheet["volleys"][0]["utterances"][0]["id"], "code": "GI",
                                         "version": submitted.json()["version"]}, format="json")
    assert again.status_code == 409 and "read-only" in again.json()["detail"]
    assert again.json()["current_version"] == submitted.json()["version"]
    assert AuditEvent.objects.filter(assignment=assignment, action="submit").count() == 1
    # The coordinator reopens it; the coder's old version is now stale.
    reopen = api("coordinator").post(f"/api/studies/smoking/assignments/{assignment.pk}/reopen/")
    assert reopen.status_code == 200 and reopen.json()["status"] == "in_progress"
    assert api("coder").post(f"/api/studies/smoking/assignments/{assignment.pk}/reopen/").status_code == 403


def test_bad_code_and_foreign_utterance_are_400(world, coder, coder2, api):
    assignment = first_assignment(coder)
    other = first_assignment(coder2)
    foreign = api("coder2").get(f"/api/assignments/{other.pk}/").json()["volleys"][0]["utterances"][0]["id"]
    client = api("coder")
    bad_code = client.post(f"/api/assignments/{assignment.pk}/codes/", {"utterance": foreign, "code": "XX", "version": 0},
                           format="json")
    assert bad_code.status_code == 400 and "code" in bad_code.json()["errors"]
    # Utterances are named by their number in the assignment's own transcript: one past the end is refused.
    n = sum(len(v["utterances"]) for v in client.get(f"/api/assignments/{assignment.pk}/").json()["volleys"])
    wrong = client.post(f"/api/assignments/{assignment.pk}/codes/",
                        {"utterance": n + 1, "code": "GI", "version": 0}, format="json")
    assert wrong.status_code == 400 and "no utterance" in wrong.json()["detail"]
    assert Assignment.objects.get(pk=assignment.pk).version == 0


# --- blinding --------------------------------------------------------------------------------------------------


def forbidden_strings(world) -> list[str]:
    labels = [src.label for src in world["generated"]] + [world["reference"].label]
    runs = [f"run {run.pk}" for run in world["runs"]]
    return [MODEL_A, MODEL_B, CHECKPOINT_A, CHECKPOINT_B, "/models/base-secret", *labels, *runs]


FORBIDDEN_KEYS = re.compile(r"(^|_)(run|runs|model|source|sources|label|checkpoint|adapter)(_|$)", re.I)


def assert_blind(body: bytes, world, where: str) -> None:
    text = body.decode()
    for secret in forbidden_strings(world):
        assert secret.lower() not in text.lower(), f"{where} leaks {secret!r}"
    for word in ("reference", "generated"):
        assert word not in text.lower(), f"{where} mentions the source kind {word!r}"
    if text.startswith(("{", "[")):
        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    assert not FORBIDDEN_KEYS.search(key), f"{where} has the key {key!r}"
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(json.loads(text))


def test_coder_visible_responses_are_blind(world, coder, api):
    client = api("coder")
    urls = ["/api/me/", "/api/studies/", "/api/studies/smoking/", "/api/queue/", "/api/queue/?limit=1000"]
    urls += [f"/api/assignments/{a.pk}/" for a in Assignment.objects.filter(coder=coder)]
    # Coordinator-only endpoints answer a coder with an error body: that must be blind too.
    urls += ["/api/studies/smoking/sources/", "/api/studies/smoking/rounds/", "/api/studies/smoking/runs/",
             f"/api/studies/smoking/runs/{world['runs'][0].pk}/", "/api/models/", "/api/studies/smoking/dialogues/"]
    seen_kinds = set()
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 403), url
        assert_blind(response.content, world, url)
        if url.startswith("/api/assignments/"):
            seen_kinds.add(Assignment.objects.get(pk=int(url.split("/")[3])).transcript.source.kind)
    assert seen_kinds == {"reference", "generated"}  # the coder really saw both kinds, blind
    assignment = first_assignment(coder)
    sheet = client.get(f"/api/assignments/{assignment.pk}/").json()
    writes = [
        client.post(f"/api/assignments/{assignment.pk}/codes/",
                    {"utterance": sheet["volleys"][0]["utterances"][0]["id"], "code": "CR", "version": 0}, format="json"),
        client.post(f"/api/assignments/{assignment.pk}/globals/", {"scale": miti.GLOBAL_KEYS[0], "value": 3, "version": 1},
                    format="json"),
        client.post(f"/api/assignments/{assignment.pk}/globals/", {"scale": miti.GLOBAL_KEYS[0], "value": 3, "version": 0},
                    format="json"),
        client.post(f"/api/assignments/{assignment.pk}/submit/", {"version": 2}, format="json"),
    ]
    assert [w.status_code for w in writes] == [200, 200, 409, 400]
    for response in writes:
        assert_blind(response.content, world, response.wsgi_request.path)


def test_coordinator_sees_sources_and_models(world, api):
    """The same strings the blinding test looks for are really in the coordinator's view (the test can fail)."""
    sources = api("coordinator").get("/api/studies/smoking/sources/").content.decode()
    assert MODEL_A in sources and MODEL_B in sources
    assignments = api("coordinator").get(f"/api/studies/smoking/rounds/{world['round'].pk}/assignments/").json()
    assert {row["source_label"] for row in assignments["results"]} >= {world["reference"].label}
