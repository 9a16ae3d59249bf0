"""The coder's pages and endpoints: queue, coding page, HTMX partials, 409s, submit, permissions.

Personas: ``coder`` and ``coder2`` double-code every reference transcript (overlap 100 %), the
``coordinator`` reopens, the ``outsider`` belongs to no study. Responses *and* the database are checked.
"""

from __future__ import annotations

import json
import re

import pytest

from annotation import actions, miti
from annotation.actions import coding
from annotation.models import Assignment, AuditEvent, GlobalRating, UtteranceCode
from annotation.queries import coding as coding_queries

from .test_coding_actions import build_round, code_everything, number, rate_globals, utterances_of

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def double_coded(study, coordinator, coder, coder2):
    """Both coders get every reference transcript; returns (coder's first, coder2's twin) assignments."""
    build_round(study, coordinator, [coder, coder2], overlap=1.0)
    mine = Assignment.objects.filter(coder=coder).order_by("position").first()
    twin = Assignment.objects.get(coder=coder2, transcript=mine.transcript)
    return mine, twin


def url(assignment, suffix: str = "") -> str:
    return f"/code/{assignment.pk}/{suffix}"


def pressed_codes(html: str) -> list[str]:
    return re.findall(r'value="([A-Z_]+)" class="cb[^"]*" aria-pressed="true"', html)


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_lists_own_assignments_in_order_with_progress(client_for, coder, double_coded):
    mine, _twin = double_coded
    coding.save_code(mine, utterance_id=utterances_of(mine)[0].pk, code="GI", version=0, actor=coder)
    response = client_for(coder).get("/code/")
    assert response.status_code == 200
    html = response.content.decode()
    queue = list(Assignment.objects.filter(coder=coder).order_by("position"))
    positions = [html.index(a.transcript.blind_code) for a in queue]
    assert positions == sorted(positions)  # shown in the coder's queue order
    total = len(utterances_of(mine))
    assert f"1/{total} utterances" in html
    assert "In progress" in html and "Not started" in html
    assert f'href="/code/{mine.pk}/"' in html
    # coder2's own assignments are not in coder's queue (same blind codes, other pks)
    for other in Assignment.objects.filter(coder__username="coder2"):
        assert f'href="/code/{other.pk}/"' not in html


@pytest.mark.django_db
def test_coding_page_shows_goal_context_utterances_codes_globals_and_hints(client_for, coder, double_coded):
    mine, _ = double_coded
    response = client_for(coder).get(url(mine))
    assert response.status_code == 200
    assert response["X-Assignment-Version"] == "0"
    html = response.content.decode()
    assert mine.transcript.blind_code in html
    assert "quit smoking" in html  # the study's change goal
    sheet = coding_queries.coding_sheet(mine)
    assert sheet.volleys[0].client_context.splitlines()[0] in html  # client context shown
    assert html.count('<li class="utt') == sheet.progress.total
    for u in utterances_of(mine):
        assert f'id="u-{number(u)}"' in html
    # one button per code and "No code", each showing its key
    assert html.count('name="code" value="CR"') == sheet.progress.total
    assert "CR<kbd>c</kbd>" in html and "NC<kbd>0/n</kbd>" in html and "SEEK<kbd>l</kbd>" in html
    # globals: unset, the 3 only a hint
    for key in miti.GLOBAL_KEYS:
        assert f'id="g-{key}"' in html
    assert html.count('class="rb is-hint" aria-pressed="false"') == 4
    assert 'class="rb" aria-pressed="true"' not in html and "not rated" in html
    # hints panel (hidden until ? or ?hints=1) with the "when in doubt" defaults
    assert 'id="hints-panel" hidden' in html
    assert "Simple over Complex Reflection (SR over CR)" in html
    data = json.loads(re.search(r'<script id="coding-data" type="application/json">(.*?)</script>', html).group(1))
    assert data["hotkeys"] == miti.HOTKEYS
    assert data["version"] == 0 and data["editable"] is True and data["assignment"] == mine.pk
    assert data["urls"]["code"] == f"/code/{mine.pk}/code/"
    assert 'src="/static/js/coding.js"' in html

    hints = client_for(coder).get(url(mine) + "?hints=1").content.decode()
    assert 'id="hints-panel" hidden' not in hints and 'id="hints-panel"' in hints


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login(client, double_coded):
    mine, _ = double_coded
    for path in ("/code/", url(mine)):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(url(mine, "code/"), {"utterance": 1, "code": "GI", "version": 0})
    assert response.status_code == 302
    assert not UtteranceCode.objects.exists()


# --- saving ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_plain_form_save_redirects_back_to_the_utterance(client_for, coder, double_coded):
    mine, _ = double_coded
    first = utterances_of(mine)[0]
    response = client_for(coder).post(url(mine, "code/"), {"utterance": number(first), "code": "SR", "version": 0})
    assert response.status_code == 302
    assert response["Location"] == f"/code/{mine.pk}/#u-{number(first)}"
    assert UtteranceCode.objects.get(assignment=mine, utterance=first).code == "SR"
    page = client_for(coder).get(url(mine)).content.decode()
    assert pressed_codes(page) == ["SR"]


@pytest.mark.django_db
def test_htmx_save_returns_the_volley_partial_and_progress_out_of_band(client_for, coder, double_coded):
    mine, _ = double_coded
    volley_utts = [u for u in utterances_of(mine) if u.volley_id == utterances_of(mine)[0].volley_id]
    client = client_for(coder)
    response = client.post(url(mine, "code/"), {"utterance": number(volley_utts[0]), "code": "SR", "version": 0}, **HX)
    assert response.status_code == 200
    assert response["X-Assignment-Version"] == "1"
    assert response["X-Coding-Target"] == f"u-{number(volley_utts[0])}"
    html = response.content.decode()
    assert "<html" not in html and "<body" not in html  # a partial, not a page
    assert f'id="volley-{volley_utts[0].volley.index + 1}"' in html  # the volley by its number
    assert 'id="coding-status"' in html and 'hx-swap-oob="true"' in html
    assert f"1/{len(utterances_of(mine))} utterances" in html
    assert pressed_codes(html) == ["SR"]
    assert 'name="version" value="1"' in html  # the partial's forms carry the new version
    assert '<span class="chip">SR</span>' in html

    if len(volley_utts) > 1:
        response = client.post(url(mine, "code/"), {"utterance": number(volley_utts[1]), "code": "CR", "version": 1}, **HX)
        html = response.content.decode()
        assert '<span class="chip">CR</span>' in html and '<span class="chip">SR</span>' not in html
        assert "2 reflections in one volley count once: CR because at least one is complex" in html


@pytest.mark.django_db
def test_stale_version_gets_409_with_the_conflict_message_and_keeps_the_first_value(client_for, coder, double_coded):
    mine, _ = double_coded
    first = utterances_of(mine)[0]
    client = client_for(coder)
    assert client.post(url(mine, "code/"), {"utterance": number(first), "code": "SR", "version": 0}, **HX).status_code == 200

    response = client.post(url(mine, "code/"), {"utterance": number(first), "code": "CR", "version": 0}, **HX)
    assert response.status_code == 409
    assert response["X-Assignment-Version"] == "1"
    html = response.content.decode()
    assert "This assignment was changed in another tab or device — reload to see the latest version" in html
    assert 'id="coding-alert"' in html
    assert UtteranceCode.objects.get(assignment=mine, utterance=first).code == "SR"

    # Without JavaScript: the fresh page, with the message, also 409.
    response = client.post(url(mine, "global/"), {"scale": "EMPATHY", "value": 4, "version": 0})
    assert response.status_code == 409
    page = response.content.decode()
    assert "changed in another tab or device" in page and pressed_codes(page) == ["SR"]
    assert not GlobalRating.objects.exists()


@pytest.mark.django_db
def test_bad_input_gets_400_and_changes_nothing(client_for, coder, double_coded):
    mine, _ = double_coded
    first = utterances_of(mine)[0]
    client = client_for(coder)
    response = client.post(url(mine, "code/"), {"utterance": number(first), "code": "OPEN", "version": 0}, **HX)
    assert response.status_code == 400
    assert "unknown MITI behaviour code &#x27;OPEN&#x27;" in response.content.decode()
    response = client.post(url(mine, "code/"), {"utterance": number(first), "code": "GI", "version": "x"}, **HX)
    assert response.status_code == 400
    assert "field &#x27;version&#x27; must be a whole number" in response.content.decode()
    response = client.post(url(mine, "global/"), {"scale": "EMPATHY", "value": 9, "version": 0})
    assert response.status_code == 400
    assert "between 1 and 5, got 9" in response.content.decode()
    assert client.get(url(mine, "code/")).status_code == 405
    assert not UtteranceCode.objects.exists() and not GlobalRating.objects.exists()
    assert Assignment.objects.get(pk=mine.pk).version == 0


@pytest.mark.django_db
def test_globals_clear_and_undo_through_the_endpoints(client_for, coder, double_coded):
    mine, _ = double_coded
    first = utterances_of(mine)[0]
    client = client_for(coder)
    response = client.post(url(mine, "global/"), {"scale": "PARTNERSHIP", "value": 2, "version": 0}, **HX)
    assert response.status_code == 200 and response["X-Coding-Target"] == "g-PARTNERSHIP"
    html = response.content.decode()
    assert 'id="globals"' in html and 'value="2" class="rb" aria-pressed="true"' in html
    assert "1/4 globals" in html
    response = client.post(url(mine, "global/"), {"scale": "PARTNERSHIP", "value": "", "version": 1}, **HX)
    assert response.status_code == 200 and not GlobalRating.objects.exists()

    client.post(url(mine, "code/"), {"utterance": number(first), "code": "AF", "version": 2}, **HX)
    response = client.post(url(mine, "clear/"), {"utterance": number(first), "version": 3}, **HX)
    assert response.status_code == 200 and not UtteranceCode.objects.exists()
    response = client.post(url(mine, "undo/"), {"version": 4}, **HX)
    assert response.status_code == 200
    assert response["X-Coding-Target"] == f"u-{number(first)}"
    assert pressed_codes(response.content.decode()) == ["AF"]
    assert UtteranceCode.objects.get(assignment=mine).code == "AF"
    response = client.post(url(mine, "undo/"), {"version": 5})  # plain form
    assert response.status_code == 302 and response["Location"] == f"/code/{mine.pk}/#u-{number(first)}"
    assert not UtteranceCode.objects.exists()
    assert list(AuditEvent.objects.filter(assignment=mine).values_list("action", flat=True)) == [
        "global", "global", "code", "code", "undo", "undo"]


# --- submit, read-only, reopen ------------------------------------------------------------------


@pytest.mark.django_db
def test_submit_refused_until_complete_then_read_only(client_for, coder, double_coded):
    mine, _ = double_coded
    client = client_for(coder)
    response = client.post(url(mine, "submit/"), {"version": 0})
    assert response.status_code == 400
    html = response.content.decode()
    total = len(utterances_of(mine))
    assert f"Cannot submit yet: {total} of {total} utterances have no code yet" in html
    assert "4 global ratings are missing (Cultivating Change Talk, Softening Sustain Talk, Partnership, Empathy)" in html
    assert Assignment.objects.get(pk=mine.pk).status == "pending"

    code_everything(mine, coder, code="Q")
    rate_globals(mine, coder, value=3)
    response = client.post(url(mine, "submit/"), {"version": mine.version})
    assert response.status_code == 302 and response["Location"] == f"/code/{mine.pk}/"
    assert Assignment.objects.get(pk=mine.pk).status == "submitted"

    page = client.get(url(mine)).content.decode()
    assert re.search(r'readonly-note">\s*Submitted — this coding is read-only until a coordinator reopens it', page)
    assert 'data-coding="code"' not in page and 'data-coding="submit"' not in page  # no forms left
    assert "Q · Question" in page  # the codes are shown as read-only badges
    assert '"editable": false' in page

    version = Assignment.objects.get(pk=mine.pk).version
    first = utterances_of(mine)[0]
    response = client.post(url(mine, "code/"), {"utterance": number(first), "code": "CR", "version": version}, **HX)
    assert response.status_code == 409
    assert "read-only until a coordinator reopens it" in response.content.decode()
    assert UtteranceCode.objects.get(assignment=mine, utterance=first).code == "Q"
    queue = client.get("/code/").content.decode()
    assert "Submitted" in queue and "View" in queue


@pytest.mark.django_db
def test_reopened_assignment_can_be_edited_again(client_for, coder, coordinator, double_coded):
    mine, _ = double_coded
    code_everything(mine, coder)
    rate_globals(mine, coder)
    coding.submit_assignment(mine, version=mine.version, actor=coder)
    reopened = actions.reopen_assignment(Assignment.objects.get(pk=mine.pk), actor=coordinator)

    client = client_for(coder)
    page = client.get(url(mine)).content.decode()
    assert 'data-coding="code"' in page and "readonly-note" not in page
    first = utterances_of(mine)[0]
    response = client.post(url(mine, "code/"), {"utterance": number(first), "code": "EMPHASIZE",
                                                "version": reopened.version}, **HX)
    assert response.status_code == 200
    assert UtteranceCode.objects.get(assignment=mine, utterance=first).code == "EMPHASIZE"


# --- permissions --------------------------------------------------------------------------------


def endpoints(assignment, utterance_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("get", url(assignment), {}),
        ("post", url(assignment, "code/"), {"utterance": utterance_id, "code": "CONFRONT", "version": 0}),
        ("post", url(assignment, "clear/"), {"utterance": utterance_id, "version": 0}),
        ("post", url(assignment, "global/"), {"scale": "EMPATHY", "value": 1, "version": 0}),
        ("post", url(assignment, "undo/"), {"version": 0}),
        ("post", url(assignment, "submit/"), {"version": 0}),
    ]


@pytest.mark.django_db
def test_a_coder_cannot_open_or_change_another_coders_assignment(client_for, coder, coder2, double_coded):
    mine, twin = double_coded
    first = utterances_of(twin)[0]
    coding.save_code(twin, utterance_id=first.pk, code="SR", version=0, actor=coder2)
    client = client_for(coder)
    for method, path, data in endpoints(twin, number(first)):
        for extra in ({}, HX):
            response = getattr(client, method)(path, data, **extra)
            assert response.status_code == 404, (method, path)
    assert UtteranceCode.objects.get(assignment=twin, utterance=first).code == "SR"
    assert not GlobalRating.objects.exists()
    assert Assignment.objects.get(pk=twin.pk).version == 1


@pytest.mark.django_db
def test_a_coder_never_sees_another_coders_codes_before_or_after_submit(client_for, coder, coder2, double_coded):
    mine, twin = double_coded
    code_everything(twin, coder2, code="CONFRONT")
    rate_globals(twin, coder2, value=5)
    client = client_for(coder)

    def assert_blind():
        page = client.get(url(mine)).content.decode()
        assert pressed_codes(page) == []
        assert 'aria-pressed="true"' not in page
        assert "CONF</span>" not in page  # no tally chip from coder2's codes
        assert f"0/{len(utterances_of(mine))} utterances" in page and "0/4 globals" in page
        queue = client.get("/code/").content.decode()
        assert "Submitted" not in queue

    assert_blind()
    coding.submit_assignment(twin, version=twin.version, actor=coder2)
    assert_blind()


@pytest.mark.django_db
def test_a_coder_cannot_reopen(client_for, coder, study, double_coded):
    mine, _ = double_coded
    code_everything(mine, coder)
    rate_globals(mine, coder)
    coding.submit_assignment(mine, version=mine.version, actor=coder)
    reopen = f"/studies/{study.slug}/rounds/{mine.coding_round_id}/assignments/{mine.pk}/reopen/"
    response = client_for(coder).post(reopen)
    assert response.status_code == 403
    row = Assignment.objects.get(pk=mine.pk)
    assert row.status == "submitted"
    assert not AuditEvent.objects.filter(action="reopen").exists()


@pytest.mark.django_db
def test_an_outsider_sees_nothing(client_for, outsider, double_coded):
    mine, _ = double_coded
    client = client_for(outsider)
    queue = client.get("/code/")
    assert queue.status_code == 200
    assert "Nothing to code yet" in queue.content.decode()
    assert mine.transcript.blind_code not in queue.content.decode()
    first = utterances_of(mine)[0]
    for method, path, data in endpoints(mine, number(first)):
        assert getattr(client, method)(path, data).status_code == 404, path
    assert not UtteranceCode.objects.exists() and Assignment.objects.get(pk=mine.pk).version == 0


@pytest.mark.django_db
def test_one_code_save_from_the_coding_page_calls_one_action(client_for, coder, double_coded, monkeypatch):
    """The view parses, calls exactly one action (``save_code``), and reads the rest through queries."""
    import importlib
    import inspect
    import pkgutil

    import annotation.actions as package

    calls: list[str] = []
    modules = [package] + [
        importlib.import_module(f"{package.__name__}.{info.name}") for info in pkgutil.iter_modules(package.__path__)
    ]
    for module in modules:
        for name, value in list(vars(module).items()):
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            if not value.__module__.startswith(package.__name__):
                continue  # imported helpers (django, queries, ...) are not calls into actions

            def counted(*args, __name=f"{value.__module__}.{value.__name__}", __real=value, **kwargs):
                calls.append(__name)
                return __real(*args, **kwargs)

            monkeypatch.setattr(module, name, counted)

    mine, _ = double_coded
    first = utterances_of(mine)[0]
    # As coding.js sends it: a urlencoded POST with the HX-Request header.
    response = client_for(coder).post(url(mine, "code/"), {"version": 0, "utterance": number(first), "code": "SR"}, **HX)
    assert response.status_code == 200 and response["X-Assignment-Version"] == "1"
    assert calls == ["annotation.actions.coding.save_code"]
    assert UtteranceCode.objects.get(assignment=mine, utterance=first).code == "SR"


@pytest.mark.django_db
def test_htmx_code_save_runs_a_fixed_small_number_of_queries(client_for, coder, double_coded):
    """The save is the coding page's hot path (docs/benchmarks.md, code-save latency): its statements
    are counted so that a change adding one is a decision, not an accident. Session and user (2), the
    gated assignment (1), the transcript's reading order (1: the coder's number → utterance, and the
    partial's numbers), the compare-and-set UPDATE, the code read and write, the audit event (4), the
    volley partial (3) and the progress block (1). Transaction statements are not counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    mine, _ = double_coded
    utts = utterances_of(mine)
    first, second = number(utts[0]), number(utts[1])
    client = client_for(coder)
    client.post(url(mine, "code/"), {"utterance": first, "code": "SR", "version": 0}, **HX)
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url(mine, "code/"), {"utterance": second, "code": "GI", "version": 1}, **HX)
    assert response.status_code == 200
    statements = [q["sql"] for q in captured.captured_queries
                  if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))]
    assert len(statements) <= 12, "\n".join(statements)
    assert UtteranceCode.objects.get(assignment=mine, utterance=utts[1]).code == "GI"
