"""The consensus page from the keyboard: which transcript "Next transcript" (``>``) opens, the coders
named A and B, the key panel, and the page after a submit. The keys themselves are driven in a real
browser in tests/e2e/test_keyboard_flow_browser.py."""

from __future__ import annotations

import pytest

from annotation import actions
from annotation.models import Assignment
from annotation.queries import adjudication as adjudication_queries

from . import test_adjudication as base
from .test_adjudication import _code, _units

# The adjudication tests' fixtures: a double-coded round, its longest transcript, both codings submitted.
coding_round, transcript, both_submitted = base.coding_round, base.transcript, base.both_submitted

pytestmark = pytest.mark.django_db


def submit_codings(coding_round, transcript, *coders) -> None:
    for coder in coders:
        _code(coding_round.assignments.get(transcript=transcript, coder=coder), ["Q"] * len(_units(transcript)),
              (3, 3, 3, 3))


def by_blind_code(coding_round) -> list:
    return sorted({a.transcript for a in coding_round.assignments.all()}, key=lambda t: t.blind_code)


def test_next_waits_for_two_submissions_skips_submitted_consensus_and_wraps(coding_round, coder, coder2,
                                                                           coordinator):
    ordered = by_blind_code(coding_round)
    assert len(ordered) >= 3
    assert adjudication_queries.next_for_consensus(coding_round) is None  # nothing submitted yet
    submit_codings(coding_round, ordered[0], coder, coder2)
    submit_codings(coding_round, ordered[1], coder)  # one coding only: not ready
    submit_codings(coding_round, ordered[2], coder, coder2)
    assert adjudication_queries.next_for_consensus(coding_round) == ordered[0]
    assert adjudication_queries.next_for_consensus(coding_round, ordered[0]) == ordered[2]
    assert adjudication_queries.next_for_consensus(coding_round, ordered[1]) == ordered[2]
    assert adjudication_queries.next_for_consensus(coding_round, ordered[2]) == ordered[0]  # wraps around
    # A started consensus still waits; a submitted one does not.
    consensus = actions.start_consensus(coding_round, ordered[0], actor=coordinator)
    assert adjudication_queries.next_for_consensus(coding_round, ordered[2]) == ordered[0]
    actions.submit_consensus(consensus, version=consensus.version, actor=coordinator)  # all agreed: complete
    assert adjudication_queries.next_for_consensus(coding_round, ordered[2]) is None
    assert adjudication_queries.next_for_consensus(coding_round, ordered[0]) == ordered[2]


def test_page_names_coders_by_letter_and_documents_the_keys(client_for, coordinator, coder, coder2, coding_round,
                                                            transcript, both_submitted):
    url = f"/studies/smoking/rounds/{coding_round.pk}/adjudication/{transcript.pk}/"
    client = client_for(coordinator)
    body = client.get(url).content.decode()
    assert "Coder A" in body and "Coder B" in body
    assert "coder2" not in body  # usernames are not shown
    assert 'id="consensus-start"' in body and "start consensus coding" in body
    client.post(url + "start/")
    body = client.get(url).content.decode()
    units = _units(transcript)
    # Each row carries both coders' codes for the [ and ] keys (coder A = "coder", B = "coder2").
    assert f'id="u{units[1]}" class="disagree" data-stop data-utterance="{units[1]}" data-a="SR" data-b="CR"' in body
    panel = body[body.index('id="key-panel"'):body.index("</aside>")]
    for text in ("accept coder A", "accept coder B", "rate the focused global", "submit the consensus",
                 "<kbd>[</kbd>", "<kbd>]</kbd>", "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>"):
        assert text in panel
    assert "next transcript" not in panel  # no other transcript waits for a consensus


def test_after_submit_the_next_transcript_is_offered(client_for, coordinator, coder, coder2, coding_round):
    ordered = by_blind_code(coding_round)
    for t in ordered[:2]:
        submit_codings(coding_round, t, coder, coder2)
    client = client_for(coordinator)
    url = f"/studies/smoking/rounds/{coding_round.pk}/adjudication/{ordered[0].pk}/"
    client.post(url + "start/")
    consensus = Assignment.objects.get(kind="consensus", transcript=ordered[0])
    response = client.post(url + "save/", {"version": consensus.version, "submit": "1"}, follow=True)
    body = response.content.decode()
    assert "Consensus submitted." in body
    next_url = f"/studies/smoking/rounds/{coding_round.pk}/adjudication/{ordered[1].pk}/"
    assert f'<a class="button" id="next-cta" href="{next_url}" autofocus>Next transcript: {ordered[1].blind_code}</a>' in body
    panel = body[body.index('id="key-panel"'):body.index("</aside>")]
    assert "accept coder A" not in panel and "open the next transcript waiting for a consensus" in panel

    # The last one: nothing left to offer.
    client.post(next_url + "start/")
    consensus = Assignment.objects.get(kind="consensus", transcript=ordered[1])
    body = client.post(next_url + "save/", {"version": consensus.version, "submit": "1"}, follow=True).content.decode()
    assert "No other transcript in this round is waiting for a consensus." in body
    assert 'id="next-cta" href="/studies/smoking/rounds/' in body
