"""The LLM coder codes a round through the chunked, resumable run machinery: against a scripted
OpenAI-compatible stand-in (named valid and invalid answers) and with the tiny demo model.

An invalid answer (``parse_answer`` refuses it) is asked again once; refused again, the volley's item
fails with the reason and no code of it is stored. Valid answers become codes on the machine's
assignment, tallied like a human's; a transcript is submitted only when every volley of it is coded.
"""

from __future__ import annotations

import json
import re

import pytest

from annotation.models import Assignment, Utterance, UtteranceCode, Volley
from inference import actions as inference_actions
from inference.coders import actions, execute
from inference.models import MachineCoder, MachineCodingItem, MachineCodingRun
from tests.evaluation.db_helpers import coded_demo_study
from tests.inference.recipe_support import FakeOpenAIServer

pytestmark = pytest.mark.django_db
UTTERANCE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


class ScriptedCoder(FakeOpenAIServer):
    """Answers each volley by its utterances' texts (joined by "|"): ``script[key]`` is a list of answers,
    one per request (the last repeats); any other volley gets a valid answer, "SR" for every utterance."""

    def __init__(self) -> None:
        super().__init__(model_ids=("mi-coder",))
        self.script: dict[str, list[str]] = {}
        self.asked: dict[str, int] = {}

    def answer(self, prompt: str) -> str:
        volley = prompt.split("one utterance per line:", 1)[1].split("Allowed code keys", 1)[0]
        utterances = UTTERANCE.findall(volley)
        first = "|".join(text for _n, text in utterances)
        n = self.asked[first] = self.asked.get(first, 0) + 1
        if first in self.script:
            answers = self.script[first]
            return answers[min(n, len(answers)) - 1]
        return json.dumps([["SR"]] * len(utterances))


@pytest.fixture
def coded(study, coordinator, coder, coder2, demo_dialogues_file):
    return coded_demo_study(study, coordinator, [coder, coder2], demo_dialogues_file, overlap=1.0)


def run_in_process(run: MachineCodingRun) -> MachineCodingRun:
    ids = list(run.items.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), run.chunk_size):
        execute.execute_chunk(None, run.pk, ids[start : start + run.chunk_size])
    run.refresh_from_db()
    return run


def _first_text(volley: Volley) -> str:
    """The volley's key for the scripted server: its utterances' texts, in order."""
    return "|".join(volley.utterances.order_by("index").values_list("text", flat=True))


def test_invalid_answers_become_item_errors_and_valid_ones_codes(coded, coordinator,
                                                                  django_capture_on_commit_callbacks):
    volleys = list(Volley.objects.filter(transcript__source=coded.reference).order_by("transcript_id", "index"))
    # Three named volleys (distinct first texts): never valid, valid on the retry, an unknown code.
    chosen: list[Volley] = []
    for v in volleys:
        if v.utterances.count() >= 2 and all(_first_text(v) != _first_text(c) for c in chosen):
            chosen.append(v)
        if len(chosen) == 3:
            break
    prose, retried, unknown = chosen
    n_retried = retried.utterances.count()
    with ScriptedCoder() as server:
        server.script = {
            _first_text(prose): ["The first is a reflection and the second a question."],
            # Too few utterances first (invalid), then a valid answer.
            _first_text(retried): ['[["SR"]]', json.dumps([["Q"]] * n_retried)],
            _first_text(unknown): [json.dumps([["XYZ"]] * unknown.utterances.count())],
        }
        model = inference_actions.register_model(name="mi-coder", backend="openai", base_model="mi-coder",
                                                 server_url=server.url)
        machine = actions.register_llm_coder(coded.study, name="llm", model=model, created_by=coordinator)
        assert machine.status == MachineCoder.Status.READY and "MITI" in machine.codebook
        with django_capture_on_commit_callbacks(execute=False):
            run = actions.start_coding_run(machine, coded.coding_round, created_by=coordinator, chunk_size=5)
        run = run_in_process(run)

    items = {i.volley_id: i for i in run.items.all()}
    failed = {v for v, i in items.items() if i.status == MachineCodingItem.Status.FAILED}
    bad_texts = {_first_text(prose), _first_text(unknown)}
    expected_failed = {v.pk for v in Volley.objects.filter(transcript__assignments__coding_round=coded.coding_round)
                       .distinct() if _first_text(v) in bad_texts}
    assert failed == expected_failed and failed
    for volley_id in failed:
        item = items[volley_id]
        assert item.error.startswith("invalid answer (2 tries): ")
        text = _first_text(Volley.objects.get(pk=volley_id))
        assert ("not valid JSON" in item.error) if text == _first_text(prose) else ("unknown code keys: XYZ" in item.error)
        # Nothing of a failed volley is stored.
        assert not UtteranceCode.objects.filter(assignment=item.assignment, utterance__volley_id=volley_id).exists()
    # The retried volley is coded from its second answer; every other volley from its valid answer.
    assert server.asked[_first_text(retried)] >= 2 and server.asked[_first_text(prose)] >= 2
    for volley_id, item in items.items():
        if volley_id in failed:
            continue
        assert item.status == MachineCodingItem.Status.DONE and not item.error
        codes = set(UtteranceCode.objects.filter(assignment=item.assignment, utterance__volley_id=volley_id)
                    .values_list("code", flat=True))
        want = {"Q"} if _first_text(Volley.objects.get(pk=volley_id)) == _first_text(retried) else {"SR"}
        assert codes == want
        assert UtteranceCode.objects.filter(assignment=item.assignment, utterance__volley_id=volley_id).count() == \
            Utterance.objects.filter(volley_id=volley_id).count()
    # A transcript with a failed volley stays unsubmitted (out of every result); the others are submitted.
    machine_work = Assignment.objects.filter(coding_round=coded.coding_round, coder=machine.service_user)
    with_failure = {items[v].assignment_id for v in failed}
    assert set(machine_work.filter(status="submitted").values_list("pk", flat=True)) == \
        set(machine_work.values_list("pk", flat=True)) - with_failure
    assert run.status == MachineCodingRun.Status.FAILED and f"{len(failed)} of {len(items)} volleys failed" in run.error


def test_demo_model_run_ends_with_its_errors_recorded_and_nothing_partial(
    coded, demo_model, coordinator, django_capture_on_commit_callbacks
):
    """The tiny demo model writes chat replies, not codes: its answers are refused, each with a reason."""
    machine = actions.register_llm_coder(coded.study, name="demo", model=demo_model, created_by=coordinator)
    with django_capture_on_commit_callbacks(execute=False):
        run = actions.start_coding_run(machine, coded.coding_round, chunk_size=16)
    # Two transcripts are enough to see it end (the rest stay queued for a worker).
    first = list(run.items.order_by("assignment_id", "volley_id").values_list("id", flat=True)[:16])
    execute.execute_chunk(None, run.pk, first)
    items = list(MachineCodingItem.objects.filter(pk__in=first))
    assert all(i.status in ("done", "failed") for i in items)
    for item in items:
        stored = UtteranceCode.objects.filter(assignment=item.assignment, utterance__volley=item.volley).count()
        if item.status == "failed":
            assert item.error and stored == 0
        else:  # a reply that happened to parse is stored whole
            assert stored == item.volley.utterances.count()
    assert any(i.status == "failed" for i in items)
