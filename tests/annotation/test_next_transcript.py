"""From transcript to transcript: which assignment "Next transcript" (the ``>`` key) opens, and what the
coding page offers after a submit. Personas: ``coder`` and ``coder2`` double-code every reference
transcript, so each has a queue of their own over the same blind codes."""

from __future__ import annotations

import json

import pytest

from annotation import queries
from annotation.actions import coding
from annotation.models import Assignment, CodingRound

from .test_coding_actions import build_round, code_everything, rate_globals


def queue_of(user) -> list[Assignment]:
    return list(queries.assignments_for(user))


def finish(assignment: Assignment, actor) -> None:
    """Code and rate everything, then submit, through the real actions."""
    code_everything(assignment, actor)
    rate_globals(assignment, actor)
    coding.submit_assignment(assignment, version=assignment.version, actor=actor)


def page_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="coding-data" type="application/json">') + len(
        '<script id="coding-data" type="application/json">'
    )
    return json.loads(html[start:html.index("</script>", start)])


@pytest.fixture
def queues(study, coordinator, coder, coder2):
    build_round(study, coordinator, [coder, coder2], overlap=1.0)
    mine, theirs = queue_of(coder), queue_of(coder2)
    assert len(mine) >= 3 and len(theirs) == len(mine)
    return mine, theirs


@pytest.mark.django_db
def test_next_follows_queue_order_and_wraps_around(coder, queues):
    mine, _theirs = queues
    assert queries.next_assignment_for(coder) == mine[0]
    for current, expected in zip(mine, mine[1:], strict=False):
        assert queries.next_assignment_for(coder, current) == expected
    # From the last one it starts again at the top: a transcript skipped earlier is still waiting.
    assert queries.next_assignment_for(coder, mine[-1]) == mine[0]


@pytest.mark.django_db
def test_next_skips_submitted_work_and_closed_rounds(coder, coordinator, queues):
    mine, _theirs = queues
    finish(mine[1], coder)
    assert queries.next_assignment_for(coder, mine[0]) == mine[2]
    # From a submitted one: the next open one after it in the queue.
    assert queries.next_assignment_for(coder, mine[1]) == mine[2]
    # In-progress work counts as open.
    coding.save_code(mine[2], utterance_id=mine[2].transcript.volleys.first().utterances.first().pk, code="GI",
                     version=0, actor=coder)
    assert Assignment.objects.get(pk=mine[2].pk).status == "in_progress"
    assert queries.next_assignment_for(coder, mine[1]) == mine[2]
    # A closed round's assignments are read-only: never offered.
    CodingRound.objects.filter(pk=mine[0].coding_round_id).update(status=CodingRound.Status.CLOSED)
    assert queries.next_assignment_for(coder, mine[0]) is None


@pytest.mark.django_db
def test_other_coders_work_is_never_offered_and_an_empty_queue_says_so(client_for, coder, coder2, queues):
    mine, theirs = queues
    theirs_pks = {a.pk for a in theirs}
    for a in mine[:-1]:
        offered = queries.next_assignment_for(coder, a)
        assert offered is not None and offered.pk not in theirs_pks and offered.coder == coder
        finish(a, coder)
    # One left: from it, nothing else (coder2's open twins of the same transcripts do not count).
    assert queries.next_assignment_for(coder, mine[-1]) is None
    assert queries.next_assignment_for(coder) == mine[-1]
    finish(mine[-1], coder)
    assert queries.next_assignment_for(coder) is None
    assert queries.next_assignment_for(coder, mine[0]) is None
    assert Assignment.objects.filter(coder=coder2).exclude(status="submitted").count() == len(theirs)

    response = client_for(coder).get(f"/code/{mine[-1].pk}/")
    html = response.content.decode()
    assert "Your queue is empty: nothing else is waiting to be coded." in html
    assert 'id="next-transcript"' not in html
    assert page_data(response)["urls"]["next"] is None
    for other in theirs:
        assert f"/code/{other.pk}/" not in html


@pytest.mark.django_db
def test_page_links_the_next_transcript_and_submit_offers_it_focused(client_for, coder, queues):
    mine, _theirs = queues
    client = client_for(coder)
    response = client.get(f"/code/{mine[0].pk}/")
    html = response.content.decode()
    assert f'id="next-transcript" href="/code/{mine[1].pk}/"' in html
    assert page_data(response)["urls"]["next"] == f"/code/{mine[1].pk}/"
    # The editable page documents submit and next; the confirm dialog is there.
    assert "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>" in html and 'id="submit-dialog"' in html
    assert "open the next transcript in your queue" in html
    assert "undo your last change" in html

    # Submitting refuses an incomplete transcript with what is missing.
    refused = client.post(f"/code/{mine[0].pk}/submit/", {"version": "0"})
    assert refused.status_code == 400
    assert "Cannot submit yet:" in refused.content.decode()
    assert Assignment.objects.get(pk=mine[0].pk).status == "pending"

    code_everything(mine[0], coder)
    rate_globals(mine[0], coder)
    response = client.post(f"/code/{mine[0].pk}/submit/", {"version": str(mine[0].version)}, follow=True)
    assert Assignment.objects.get(pk=mine[0].pk).status == "submitted"
    html = response.content.decode()
    # The read-only page: "Next transcript" first and focused, so Enter opens it.
    assert (f'<a class="button" id="next-cta" href="/code/{mine[1].pk}/" autofocus>'
            f"Next transcript: {mine[1].transcript.blind_code}</a>") in html
    # Only keys that work here: moving, next, hints; no coding, rating, undo or submit keys.
    panel = html[html.index('id="key-panel"'):html.index("</table>", html.index('id="key-panel"'))]
    assert "open the next transcript in your queue" in panel
    for gone in ("rate the focused global", "clear the focused item", "undo your last change", "Ctrl"):
        assert gone not in panel
    legend = html[html.index('class="card legend"'):html.index('id="key-panel"')]
    assert "<kbd>" not in legend
    assert 'id="submit-dialog"' not in html and 'id="auto-advance"' not in html
