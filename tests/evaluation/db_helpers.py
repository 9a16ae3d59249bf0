"""Set up coded studies for the evaluation DB tests through the real annotation/inference actions.

``coded_demo_study`` imports the demo dialogues, makes the reference source and a "model" source (a
finished generation run of a stand-in model whose replies are the gold replies shortened), opens a
round in which both coders code every transcript, and codes + submits each assignment with
``save_code`` / ``set_global`` / ``submit_assignment``. Codes are a fixed function of (coder,
volley, utterance), so every expected number in the tests can be worked out by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from annotation import actions
from annotation.models import Assignment, CodingRound, Dialogue, Study, TranscriptSource, Utterance
from inference.models import GenerationItem, GenerationRun, RegisteredModel

CodeFor = Callable[[int, int, int], str]  # (coder number 0/1, volley index, utterance index) -> code
GlobalsFor = Callable[[int, Assignment], dict[str, int]]


def default_code(coder: int, volley: int, utterance: int) -> str:
    """Coder 0 and coder 1 agree except on every third volley's first utterance (CR vs SR)."""
    cycle = ["Q", "SR", "CR", "GI", "AF", "NONE"]
    code = cycle[(volley + utterance) % len(cycle)]
    if coder == 1 and utterance == 0 and volley % 3 == 0:
        code = {"Q": "SR", "SR": "CR", "CR": "SR"}.get(code, code)
    return code


def default_globals(coder: int, assignment: Assignment) -> dict[str, int]:
    base = 3 + (assignment.transcript_id % 2)
    return {
        "CULTIVATING_CHANGE_TALK": base,
        "SOFTENING_SUSTAIN_TALK": base + (1 if coder == 0 else 0),
        "PARTNERSHIP": 4,
        "EMPATHY": 4 if coder == 0 else 3 + (assignment.transcript_id % 2),
    }


def code_and_submit(
    assignment: Assignment, coder_no: int, code_for: CodeFor = default_code,
    globals_for: GlobalsFor = default_globals, submit: bool = True,
) -> None:
    """Code every utterance of the assignment's transcript, rate the globals, submit — via the actions."""
    version = assignment.version
    actor = assignment.coder
    utterances = Utterance.objects.filter(volley__transcript_id=assignment.transcript_id).select_related("volley")
    for utt in utterances.order_by("volley__index", "index"):
        result = actions.save_code(
            assignment, utterance_id=utt.pk, code=code_for(coder_no, utt.volley.index, utt.index),
            version=version, actor=actor,
        )
        version = result.version
    if assignment.coding_round.globals_rated:
        for scale, value in globals_for(coder_no, assignment).items():
            version = actions.set_global(assignment, scale=scale, value=value, version=version, actor=actor).version
    if submit:
        actions.submit_assignment(assignment, version=version, actor=actor)


@dataclass
class CodedStudy:
    study: Study
    reference: TranscriptSource
    generated: TranscriptSource
    run: GenerationRun
    coding_round: CodingRound


def finished_run(study: Study, *, name: str = "demo-mi-model", base: RegisteredModel | None = None) -> GenerationRun:
    """A finished generation run whose replies are each gold reply's first sentence (or first 12 chars).

    Rows are written directly: this is the inference app's edge (a worker would write them the same way).
    """
    model = RegisteredModel.objects.create(
        name=name, backend="transformers", base_model="/models/demo", is_finetuned=base is not None, base_of=base
    )
    run = GenerationRun.objects.create(study=study, model=model, split="test", status=GenerationRun.Status.DONE)
    for dialogue in Dialogue.objects.filter(study=study, split="test").order_by("id"):
        for index, (_client, gold) in enumerate(actions.dialogue_rounds(dialogue.turns.order_by("index"))):
            reply = gold.split("。")[0] + "。" if "。" in gold else gold[:12]
            GenerationItem.objects.create(
                run=run, dialogue=dialogue, round_index=index, reference=gold, response=reply,
                status=GenerationItem.Status.DONE,
            )
    return run


def generated_source(study: Study, run: GenerationRun) -> TranscriptSource:
    responses: dict[int, list[str]] = {}
    for dialogue_id, response in run.items.order_by("dialogue_id", "round_index").values_list(
        "dialogue_id", "response"
    ):
        responses.setdefault(dialogue_id, []).append(response)
    return actions.create_generated_source(study, run_id=run.pk, label=run.model.name, responses=responses)


def coded_demo_study(
    study: Study, coordinator, coders: list, demo_file, *, overlap: float = 1.0, submit: bool = True,
    code_for: CodeFor = default_code, globals_for: GlobalsFor = default_globals, all_test: bool = False,
) -> CodedStudy:
    actions.import_dialogues(study, path=str(demo_file), created_by=coordinator)
    if all_test or not Dialogue.objects.filter(study=study, split="test").exists():
        actions.split_randomly(study, n_test=Dialogue.objects.filter(study=study).count(), seed=1)
    reference = actions.ensure_reference_source(study)
    run = finished_run(study)
    generated = generated_source(study, run)
    coding_round = actions.create_coding_round(
        study, name="Round 1", sources=[reference, generated], coders=coders, overlap=overlap, seed=7,
        created_by=coordinator,
    )
    for number, coder in enumerate(coders):
        for assignment in Assignment.objects.filter(coding_round=coding_round, coder=coder).select_related(
            "coding_round"
        ):
            code_and_submit(assignment, number, code_for=code_for, globals_for=globals_for, submit=submit)
    return CodedStudy(study, reference, generated, run, coding_round)
