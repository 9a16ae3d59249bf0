"""Membership is the gate for everything a coder touches.

Persona: ``coder`` has a round of work in ``study``. Once removed from the study (or deactivated) every
coder URL — queue, coding page, each partial endpoint in HTMX and plain form, submit — and every coder
API operation answers without their work (404 for the pages and API of a removed member; 403 "account
deactivated" for a deactivated user, whose stale session the login page ends), and none of their
writes changes a row. Their assignments stay, shown "coder removed" to the coordinator, who reassigns
them; the old coding is then out of the results until included. Re-adding the member restores access.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation import actions
from annotation.models import Assignment, AuditEvent, GlobalRating, UtteranceCode
from evaluation.summaries import load_summaries

from .test_coding_actions import build_round, code_everything, number, rate_globals, utterances_of

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def state() -> dict[str, object]:
    """Every row and value a coder's write could change."""
    return {
        "codes": sorted(UtteranceCode.objects.values_list("assignment_id", "utterance_id", "code")),
        "globals": sorted(GlobalRating.objects.values_list("assignment_id", "scale", "value")),
        "events": AuditEvent.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("id", "status", "version", "in_results")),
    }


@pytest.fixture
def work(study, coordinator, coder):
    build_round(study, coordinator, [coder])
    mine = list(Assignment.objects.filter(coder=coder).select_related("transcript", "coding_round").order_by("position"))
    # Some work already done, so reads have something to leak and undo has something to undo.
    coding_first = mine[0]
    actions.save_code(coding_first, utterance_id=utterances_of(coding_first)[0].pk, code="SR", version=0, actor=coder)
    return mine


def coder_requests(assignment: Assignment) -> list[tuple[str, str, dict, dict]]:
    """(method, url, data, extra) of every coder-facing page and partial endpoint."""
    first = number(utterances_of(assignment)[0])
    v = Assignment.objects.get(pk=assignment.pk).version
    base = f"/code/{assignment.pk}/"
    posts = [
        ("code/", {"utterance": first, "code": "CR", "version": v}),
        ("clear/", {"utterance": first, "version": v}),
        ("global/", {"scale": "EMPATHY", "value": 2, "version": v}),
        ("undo/", {"version": v}),
        ("submit/", {"version": v}),
    ]
    out = [("get", "/code/", {}, {}), ("get", base, {}, {}), ("get", f"{base}?hints=1", {}, {})]
    for path, data in posts:
        out += [("post", base + path, data, {}), ("post", base + path, data, HX)]
    return out


def api_requests(assignment: Assignment) -> list[tuple[str, str, dict]]:
    first = number(utterances_of(assignment)[0])
    v = Assignment.objects.get(pk=assignment.pk).version
    base = f"/api/assignments/{assignment.pk}/"
    return [
        ("get", f"{base}", {}),
        ("post", f"{base}codes/", {"utterance": first, "code": "CR", "version": v}),
        ("post", f"{base}globals/", {"scale": "EMPATHY", "value": 2, "version": v}),
        ("post", f"{base}undo/", {"version": v}),
        ("post", f"{base}submit/", {"version": v}),
    ]


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {actions.create_token(user, 'gate')[1]}")
    return client


def test_a_removed_member_reaches_nothing_and_writes_nothing(client_for, study, coder, work):
    api = token_client(coder)
    client = client_for(coder)
    assert client.get(f"/code/{work[0].pk}/").status_code == 200
    assert api.get(f"/api/assignments/{work[0].pk}/").status_code == 200

    actions.remove_membership(study, "coder")
    before = state()

    for a in work:
        for method, url, data, extra in coder_requests(a):
            response = getattr(client, method)(url, data, **extra)
            if url == "/code/":
                assert response.status_code == 200 and f"/code/{a.pk}/" not in response.content.decode()
            else:
                assert response.status_code == 404, (method, url, extra, response.status_code)
        for method, url, data in api_requests(a):
            response = getattr(api, method)(url, data, format="json")
            assert response.status_code == 404, (method, url, response.status_code)
    queue = api.get("/api/queue/")
    assert queue.status_code == 200 and queue.json()["results"] == []
    assert state() == before


def test_a_deactivated_user_reaches_nothing_and_writes_nothing(client_for, coder, work):
    api = token_client(coder)
    client = client_for(coder)
    type(coder).objects.filter(pk=coder.pk).update(is_active=False)
    before = state()

    for a in work:
        for method, url, data, extra in coder_requests(a):
            response = getattr(client, method)(url, data, **extra)
            # Their session still exists: every page and partial says the account is deactivated.
            assert response.status_code == 403, (method, url, response.status_code)
            assert "deactivated" in response.content.decode(), (method, url)
        for method, url, data in api_requests(a):
            response = getattr(api, method)(url, data, format="json")
            assert response.status_code == 403, (method, url, response.status_code)
            assert "deactivated" in response.json()["detail"], (method, url)
    assert api.get("/api/queue/").status_code == 403
    assert client.get("/code/").status_code == 403
    assert state() == before
    # The way out is the login page: it ends the stale session and refuses the inactive user's password.
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/code/").status_code == 302


def test_a_save_in_flight_when_the_member_is_removed_writes_nothing(study, coder, work):
    # The request passed the gate; the member is removed before its write takes the row lock.
    assignment = work[0]
    actions.remove_membership(study, "coder")
    before = state()
    with pytest.raises(actions.ActionError, match="no longer a member"):
        actions.save_code(assignment, utterance_id=utterances_of(assignment)[1].pk, code="Q",
                          version=Assignment.objects.get(pk=assignment.pk).version, actor=coder)
    assert state() == before


def test_re_adding_the_member_restores_access(client_for, study, coder, work):
    actions.remove_membership(study, "coder")
    actions.set_membership(study, "coder", "coder")
    client = client_for(coder)
    a = work[0]
    assert client.get(f"/code/{a.pk}/").status_code == 200
    assert f"/code/{a.pk}/" in client.get("/code/").content.decode()
    response = client.post(f"/code/{a.pk}/code/", {"utterance": number(utterances_of(a)[1]), "code": "Q", "version": 1}, **HX)
    assert response.status_code == 200
    assert UtteranceCode.objects.filter(assignment=a, code="Q").count() == 1
    assert token_client(coder).get(f"/api/assignments/{a.pk}/").status_code == 200


def test_the_coordinator_sees_coder_removed_and_reassigns(client_for, study, coordinator, coder, coder2, work):
    done = Assignment.objects.select_related("transcript", "coding_round").get(pk=work[1].pk)
    code_everything(done, coder)
    rate_globals(done, coder)
    actions.submit_assignment(done, version=done.version, actor=coder)
    assert {s.assignment_id for s in load_summaries(study).codings} == {done.pk}

    actions.remove_membership(study, "coder")
    page = client_for(coordinator)
    url = f"/studies/{study.slug}/rounds/{done.coding_round_id}/"
    html = page.get(url).content.decode()
    assert "coder removed" in html
    # Still counted until the coordinator reassigns.
    assert {s.assignment_id for s in load_summaries(study).codings} == {done.pk}

    response = page.post(f"{url}coders/{coder.pk}/reassign/", {"to": "coder2"})
    assert response.status_code == 302
    old = Assignment.objects.filter(coder=coder)
    fresh = Assignment.objects.filter(coder=coder2, coding_round_id=done.coding_round_id)
    assert old.count() == len(work) and not old.filter(in_results=True).exists()  # history kept, out of results
    assert sorted(fresh.values_list("transcript_id", flat=True)) == sorted(a.transcript_id for a in work)
    assert set(fresh.values_list("status", "version")) == {("pending", 0)}  # fresh assignments
    assert load_summaries(study).codings == []
    assert "reassigned: not in results" in page.get(url).content.decode()

    # The coordinator includes the old coding again.
    page.post(f"{url}coders/{coder.pk}/include/", {"include": "1"})
    assert {s.assignment_id for s in load_summaries(study).codings} == {done.pk}
    # The new coder works on the fresh assignments.
    assert client_for(coder2).get(f"/code/{fresh.first().pk}/").status_code == 200


def test_only_a_removed_coders_work_is_reassigned(study, coder, work):
    with pytest.raises(actions.ActionError, match="removed"):
        actions.reassign_coder(work[0].coding_round, from_user_id=coder.pk, to_username="coder2")
    actions.remove_membership(study, "coder")
    with pytest.raises(actions.ActionError, match="not an active coder"):
        actions.reassign_coder(work[0].coding_round, from_user_id=coder.pk, to_username="outsider")
