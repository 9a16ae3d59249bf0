"""Coordinator pages: transcripts and segmentation, round creation, progress, read-only view, reopen,
history, AnnoMI import, the create_round / import_annomi_labels commands; personas on each."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation import actions
from annotation.models import (
    Assignment,
    AuditEvent,
    CodingRound,
    Dialogue,
    GlobalRating,
    Transcript,
    TranscriptSource,
    Utterance,
    UtteranceCode,
    Volley,
)
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db


@pytest.fixture
def reference(study, demo_dialogues_file):
    """The demo dialogues (4 in the test split) and their reference transcripts."""
    actions.import_dialogues(study, path=str(demo_dialogues_file))
    return actions.ensure_reference_source(study)


@pytest.fixture
def coding_round(study, reference, coder, coder2, coordinator):
    """Both coders code every reference transcript (100 % overlap), seed 7."""
    return actions.create_coding_round(
        study, name="Pilot", sources=[reference], coders=[coder, coder2], overlap=1.0, seed=7, created_by=coordinator
    )


def _code_all(assignment: Assignment, code: str = "Q", globals_value: int | None = 4) -> Assignment:
    """Code every utterance and rate the globals through the coder actions, then submit."""
    actor = assignment.coder
    for uid in Utterance.objects.filter(volley__transcript=assignment.transcript).values_list("id", flat=True):
        actions.save_code(assignment, utterance_id=uid, code=code, version=assignment.version, actor=actor)
    if globals_value is not None:
        for scale in ("CULTIVATING_CHANGE_TALK", "SOFTENING_SUSTAIN_TALK", "PARTNERSHIP", "EMPATHY"):
            actions.set_global(assignment, scale=scale, value=globals_value, version=assignment.version, actor=actor)
    return actions.submit_assignment(assignment, version=assignment.version, actor=actor)


# --- transcripts and segmentation -------------------------------------------------------------------


def test_transcripts_page_creates_reference_transcripts(client_for, coordinator, study, demo_dialogues_file):
    actions.import_dialogues(study, path=str(demo_dialogues_file))
    client = client_for(coordinator)
    page = client.get("/studies/smoking/transcripts/").content.decode()
    assert "The test split has 4 dialogues." in page
    response = client.post("/studies/smoking/transcripts/reference/")
    assert response.status_code == 302
    source = TranscriptSource.objects.get(study=study, kind="reference")
    assert source.transcripts.count() == 4
    # Idempotent: a second press creates nothing new.
    client.post("/studies/smoking/transcripts/reference/")
    assert source.transcripts.count() == 4
    page = client.get("/studies/smoking/transcripts/").content.decode()
    assert "Reference dialogues" in page
    listing = client.get(f"/studies/smoking/transcripts/sources/{source.pk}/").content.decode()
    for t in source.transcripts.all():
        assert t.blind_code in listing and t.dialogue.external_id in listing


def test_merge_and_split_before_the_round(client_for, coordinator, reference):
    client = client_for(coordinator)
    volley = next(v for v in Volley.objects.filter(transcript__source=reference) if v.utterances.count() >= 2)
    transcript = volley.transcript
    texts = list(volley.utterances.order_by("index").values_list("text", flat=True))
    url = f"/studies/smoking/transcripts/{transcript.pk}/segment/"
    page = client.get(f"/studies/smoking/transcripts/{transcript.pk}/").content.decode()
    assert 'id="seg-open"' in page and 'value="merge"' in page

    response = client.post(url, {"op": "merge", "volley": volley.pk, "index": 0})
    assert response.status_code == 302
    merged = list(volley.utterances.order_by("index").values_list("text", flat=True))
    assert len(merged) == len(texts) - 1
    assert merged[0].startswith(texts[0]) and merged[0].endswith(texts[1])

    first = merged[0]
    cut = len(texts[0])
    marked = first[:cut] + "|" + first[cut:]
    response = client.post(url, {"op": "split", "volley": volley.pk, "index": 0, "marked": marked})
    assert response.status_code == 302
    after = list(volley.utterances.order_by("index").values_list("text", flat=True))
    assert len(after) == len(texts)
    assert after == texts

    # A marker that changes the text is refused and nothing changes.
    before = list(volley.utterances.order_by("index").values_list("text", flat=True))
    response = client.post(url, {"op": "split", "volley": volley.pk, "index": 0, "marked": "x|y"}, follow=True)
    assert "Put exactly one |" in response.content.decode()
    assert list(volley.utterances.order_by("index").values_list("text", flat=True)) == before


def test_segment_htmx_returns_the_volley_partial(client_for, coordinator, reference):
    volley = next(v for v in Volley.objects.filter(transcript__source=reference) if v.utterances.count() >= 2)
    n = volley.utterances.count()
    response = client_for(coordinator).post(
        f"/studies/smoking/transcripts/{volley.transcript_id}/segment/",
        {"op": "merge", "volley": volley.pk, "index": 0},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<section class="card volley" id="v{volley.index}">')
    assert "<html" not in body
    assert volley.utterances.count() == n - 1


def test_segmentation_is_fixed_once_a_round_opens(client_for, coordinator, coding_round):
    transcript = Transcript.objects.filter(assignments__coding_round=coding_round).first()
    volley = transcript.volleys.first()
    before = list(Utterance.objects.filter(volley=volley).values_list("text", flat=True))
    client = client_for(coordinator)
    page = client.get(f"/studies/smoking/transcripts/{transcript.pk}/").content.decode()
    assert 'id="seg-locked"' in page and 'value="merge"' not in page
    response = client.post(
        f"/studies/smoking/transcripts/{transcript.pk}/segment/",
        {"op": "merge", "volley": volley.pk, "index": 0}, follow=True,
    )
    assert "Segmentation is fixed" in response.content.decode()
    assert list(Utterance.objects.filter(volley=volley).values_list("text", flat=True)) == before


def test_utterance_html_is_escaped_on_coordinator_pages(client_for, coordinator, study, coder):
    data = (
        b'{"external_id": "xss", "split": "test", "turns": [{"speaker": "client", "text": "<b>hi</b>"},'
        b' {"speaker": "counselor", "text": "<script>alert(1)</script> Fine."}]}\n'
    )
    actions.import_dialogues(study, data=data, filename="x.jsonl")
    source = actions.ensure_reference_source(study)
    transcript = source.transcripts.get()
    r = actions.create_coding_round(study, name="R", sources=[source], coders=[coder], overlap=0, seed=1)
    assignment = r.assignments.get()
    client = client_for(coordinator)
    for url in (
        f"/studies/smoking/transcripts/{transcript.pk}/",
        f"/studies/smoking/rounds/{r.pk}/assignments/{assignment.pk}/",
    ):
        body = client.get(url).content.decode()
        assert "<script>alert(1)" not in body and "<b>hi" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


# --- round creation -------------------------------------------------------------------------------


def test_create_round_page(client_for, coordinator, study, reference, coder, coder2):
    client = client_for(coordinator)
    page = client.get("/studies/smoking/rounds/new/").content.decode()
    assert 'value="20"' in page  # default overlap 20 %
    assert "coder2" in page and "Reference dialogues" in page
    response = client.post(
        "/studies/smoking/rounds/new/",
        {"name": "Main", "sources": [reference.pk], "coders": [coder.pk, coder2.pk], "overlap_percent": 100,
         "per_overlap": 2, "seed": 42},
    )
    coding_round = CodingRound.objects.get(study=study, name="Main")
    assert response.status_code == 302 and response["Location"] == f"/studies/smoking/rounds/{coding_round.pk}/"
    assert coding_round.seed == 42 and coding_round.overlap == 1.0 and coding_round.created_by == coordinator
    assert coding_round.assignments.count() == 8
    assert set(coding_round.assignments.values_list("coder__username", flat=True)) == {"coder", "coder2"}


def test_create_round_blank_seed_is_drawn_and_recorded(client_for, coordinator, study, reference, coder, coder2):
    response = client_for(coordinator).post(
        "/studies/smoking/rounds/new/",
        {"name": "Main", "sources": [reference.pk], "coders": [coder.pk, coder2.pk], "overlap_percent": 20,
         "per_overlap": 2, "seed": ""},
        follow=True,
    )
    coding_round = CodingRound.objects.get(study=study, name="Main")
    assert f"Round created with seed {coding_round.seed}." in response.content.decode()
    # 20 % of 4 transcripts = 1 double-coded: 5 assignments.
    assert coding_round.assignments.count() == 5


def test_create_round_refusals_change_nothing(client_for, coordinator, study, reference, coder, outsider):
    client = client_for(coordinator)
    # Not a coder of the study: not even a choice.
    response = client.post(
        "/studies/smoking/rounds/new/",
        {"name": "X", "sources": [reference.pk], "coders": [outsider.pk], "overlap_percent": 20, "per_overlap": 2},
    )
    assert response.status_code == 400
    # One coder cannot double-code.
    response = client.post(
        "/studies/smoking/rounds/new/",
        {"name": "X", "sources": [reference.pk], "coders": [coder.pk], "overlap_percent": 20, "per_overlap": 2},
    )
    assert response.status_code == 400
    assert "Double coding needs at least two coders." in response.content.decode()
    assert CodingRound.objects.count() == 0 and Assignment.objects.count() == 0


# --- progress, read-only view, reopen, history ------------------------------------------------------


def test_round_progress_per_coder(client_for, coordinator, coding_round, coder):
    first = coding_round.assignments.filter(coder=coder).order_by("position").first()
    _code_all(first)
    second = coding_round.assignments.filter(coder=coder).order_by("position")[1]
    actions.save_code(
        second, utterance_id=Utterance.objects.filter(volley__transcript=second.transcript).first().pk,
        code="SR", version=0, actor=coder,
    )
    response = client_for(coordinator).get(f"/studies/smoking/rounds/{coding_round.pk}/")
    assert response.status_code == 200
    rows = {row["coder"].username: row for row in response.context["progress"]}
    assert {k: rows["coder"][k] for k in ("assigned", "pending", "in_progress", "submitted", "percent")} == {
        "assigned": 4, "pending": 2, "in_progress": 1, "submitted": 1, "percent": 25
    }
    assert {k: rows["coder2"][k] for k in ("assigned", "pending", "submitted")} == {
        "assigned": 4, "pending": 4, "submitted": 0
    }
    assert response.context["percent"] == 12  # 1 of 8
    body = response.content.decode()
    assert "Reference dialogues" in body  # coordinators see the source label
    assert 'aria-valuenow="12"' in body


def test_read_only_view_reopen_and_history(client_for, coordinator, coding_round, coder):
    assignment = coding_round.assignments.filter(coder=coder).order_by("position").first()
    _code_all(assignment, code="CR", globals_value=5)
    url = f"/studies/smoking/rounds/{coding_round.pk}/assignments/{assignment.pk}/"
    client = client_for(coordinator)
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert assignment.transcript.blind_code in body and "Reference dialogues" in body
    units = Utterance.objects.filter(volley__transcript=assignment.transcript).count()
    assert body.count('data-code="CR"') == units
    assert dict((s.key, v) for s, v in response.context["globals"]) == {
        "CULTIVATING_CHANGE_TALK": 5, "SOFTENING_SUSTAIN_TALK": 5, "PARTNERSHIP": 5, "EMPATHY": 5
    }
    scores = {row["key"]: row for row in response.context["scores"]}
    assert scores["technical"]["value"] == "5" and scores["technical"]["status"] == "good"
    assert scores["pct_cr"]["value"] == "100 %"
    assert scores["r_to_q"]["value"] == "n/a"  # no question: undefined, not 0
    events = list(response.context["events"])
    assert len(events) == units + 4 + 1  # each code, each global, the submit
    assert events[0].actor == coder and events[0].old == "" and events[0].new == "CR"
    assert "Reopen for editing" in body

    response = client.post(url + "reopen/")
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.status == "in_progress"
    reopen = AuditEvent.objects.filter(assignment=assignment).last()
    assert (reopen.action, reopen.actor, reopen.old, reopen.new) == ("reopen", coordinator, "submitted", "in_progress")
    body = client.get(url).content.decode()
    assert "Reopen for editing" not in body
    assert "<td>Reopen</td>" in body and "coordinator" in body

    # Reopening work that is not submitted is refused with a message and changes nothing.
    version = assignment.version
    response = client.post(url + "reopen/", follow=True)
    assert "Only submitted work can be reopened." in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.version == version


# --- AnnoMI import page and commands -------------------------------------------------------------


def test_annomi_import_page(client_for, coordinator, study):
    data = (FIXTURES / "import" / "annomi_full.csv").read_bytes()
    response = client_for(coordinator).post(
        "/studies/smoking/rounds/annomi/",
        {"name": "AnnoMI experts", "file": SimpleUploadedFile("annomi_full.csv", data)},
        follow=True,
    )
    coding_round = CodingRound.objects.get(study=study, name="AnnoMI experts")
    assert response.redirect_chain[-1][0] == f"/studies/smoking/rounds/{coding_round.pk}/"
    assert "Imported 3 codings of 2 transcripts by 3 annotators (1 multi-coded)." in response.content.decode()
    assert "Globals not rated" in response.content.decode()
    assert coding_round.globals_rated is False
    assert GlobalRating.objects.filter(assignment__coding_round=coding_round).count() == 0


def test_annomi_import_page_bad_file(client_for, coordinator, study):
    response = client_for(coordinator).post(
        "/studies/smoking/rounds/annomi/",
        {"name": "X", "file": SimpleUploadedFile("a.csv", b"transcript_id,utterance_id\n1,2\n")},
    )
    assert response.status_code == 400
    assert "a.csv, line 1, field &#x27;interlocutor&#x27;: missing column in the header" in response.content.decode()
    assert CodingRound.objects.count() == 0 and Dialogue.objects.count() == 0


def test_import_annomi_labels_command(study, coordinator):
    out = io.StringIO()
    call_command(
        "import_annomi_labels", "smoking", str(FIXTURES / "import" / "annomi_full.csv"), "--user", "coordinator",
        stdout=out,
    )
    assert "2 transcripts, 3 annotators, 3 submitted codings, 8 utterance codes" in out.getvalue()
    coding_round = CodingRound.objects.get(study=study)
    assert coding_round.created_by == coordinator
    codes = dict(
        UtteranceCode.objects.filter(assignment__coding_round=coding_round, utterance__text="You're worried about it.")
        .values_list("assignment__coder__username", "code")
    )
    assert codes == {"annomi-annotator-0": "SR", "annomi-annotator-2": "CR"}
    with pytest.raises(CommandError) as exc:
        call_command("import_annomi_labels", "smoking", str(FIXTURES / "import" / "annomi_full.csv"))
    assert exc.value.returncode == 1 and "already exists" in str(exc.value)


def test_create_round_command(study, demo_dialogues_file, coder, coder2):
    actions.import_dialogues(study, path=str(demo_dialogues_file))
    out = io.StringIO()
    call_command("create_round", "smoking", "--name", "CLI", "--reference", "--overlap", "0.5", "--seed", "3", stdout=out)
    coding_round = CodingRound.objects.get(study=study, name="CLI")
    assert "6 assignments for 2 coders, overlap 50%, seed 3." in out.getvalue()
    assert coding_round.seed == 3 and coding_round.assignments.count() == 6
    with pytest.raises(CommandError, match="No source labelled 'gpt'"):
        call_command("create_round", "smoking", "--name", "CLI2", "--source", "gpt")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_round", "smoking", "--name", "CLI", "--reference")


# --- personas --------------------------------------------------------------------------------------


def _round_urls(coding_round) -> list[str]:
    a = coding_round.assignments.first()
    t = a.transcript
    return [
        "/studies/smoking/transcripts/",
        f"/studies/smoking/transcripts/sources/{t.source_id}/",
        f"/studies/smoking/transcripts/{t.pk}/",
        "/studies/smoking/rounds/",
        "/studies/smoking/rounds/new/",
        "/studies/smoking/rounds/annomi/",
        f"/studies/smoking/rounds/{coding_round.pk}/",
        f"/studies/smoking/rounds/{coding_round.pk}/assignments/{a.pk}/",
        f"/studies/smoking/rounds/{coding_round.pk}/adjudication/",
        f"/studies/smoking/rounds/{coding_round.pk}/adjudication/{t.pk}/",
    ]


def test_personas_on_every_round_page(client_for, coordinator, coder, outsider, coding_round):
    urls = _round_urls(coding_round)
    for url in urls:
        assert client_for(outsider).get(url).status_code == 404, url
        assert client_for(coder).get(url).status_code == 403, url
    for url in urls[:-1]:  # the last one redirects until two codings are submitted
        assert client_for(coordinator).get(url).status_code == 200, url


def test_coder_cannot_reopen_or_create(client_for, coder, coder2, coding_round, reference):
    assignment = coding_round.assignments.filter(coder=coder).first()
    _code_all(assignment)
    client = client_for(coder)
    url = f"/studies/smoking/rounds/{coding_round.pk}/assignments/{assignment.pk}/reopen/"
    assert client.post(url).status_code == 403
    assignment.refresh_from_db()
    assert assignment.status == "submitted"
    response = client.post(
        "/studies/smoking/rounds/new/",
        {"name": "Mine", "sources": [reference.pk], "coders": [coder.pk, coder2.pk], "overlap_percent": 20,
         "per_overlap": 2},
    )
    assert response.status_code == 403
    assert not CodingRound.objects.filter(name="Mine").exists()
    assert client.post("/studies/smoking/transcripts/reference/").status_code == 403


def test_another_studys_round_is_404(client_for, coordinator, coding_round, other_study):
    # The outsider's study: our coordinator is no member there.
    assert client_for(coordinator).get(f"/studies/other/rounds/{coding_round.pk}/").status_code == 404


# --- Simplified Chinese ----------------------------------------------------------------------------


def test_coordinator_pages_in_simplified_chinese(client_for, coordinator, coding_round, coder):
    from django.conf import settings

    assignment = coding_round.assignments.filter(coder=coder).order_by("position").first()
    _code_all(assignment, code="CR", globals_value=4)
    client = client_for(coordinator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    body = client.get(f"/studies/smoking/rounds/{coding_round.pk}/").content.decode()
    assert "编码轮次" in body and "进度" in body and "已提交" in body
    body = client.get(f"/studies/smoking/rounds/{coding_round.pk}/assignments/{assignment.pk}/").content.decode()
    # MITI names come from the pure instrument module through the catalogue.
    for text in ("培养改变语句", "共情", "复杂反映百分比", "良好"):
        assert text in body, text
    assert "重新开放以便编辑" in body
    body = client.get("/studies/smoking/transcripts/").content.decode()
    assert "测试集有 4 段对话。" in body
