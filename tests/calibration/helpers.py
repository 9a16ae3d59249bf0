"""Gold transcripts made through the real actions: two coders code, a coordinator adjudicates and marks gold."""

from __future__ import annotations

import random

from annotation import actions, miti
from annotation.models import Assignment, Dialogue, Transcript, TranscriptSource, Utterance, Volley

CODES = ("SR", "CR", "Q", "GI", "AF", "NONE")
GLOBALS = {"CULTIVATING_CHANGE_TALK": 4, "SOFTENING_SUSTAIN_TALK": 3, "PARTNERSHIP": 4, "EMPATHY": 5}


def make_transcripts(study, n: int, *, label: str = "Reference dialogues", kind: str = "reference",
                     volleys: int = 4, per_volley: int = 3, prefix: str = "d") -> list[Transcript]:
    rng = random.Random(f"{prefix}{n}{label}")
    source = TranscriptSource.objects.create(study=study, kind=kind, label=label)
    dialogues = Dialogue.objects.bulk_create(
        [Dialogue(study=study, external_id=f"{prefix}{i:03d}", split="test") for i in range(n)]
    )
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    transcripts = Transcript.objects.bulk_create(
        [Transcript(source=source, dialogue=d, blind_code="T-" + "".join(rng.choice(alphabet) for _ in range(5)))
         for d in dialogues]
    )
    made = Volley.objects.bulk_create(
        [Volley(transcript=t, index=i, client_context=f"client says {i}", text=f"reply {i}")
         for t in transcripts for i in range(volleys)]
    )
    Utterance.objects.bulk_create(
        [Utterance(volley=v, index=j, text=f"counsellor sentence {v.index}.{j}") for v in made for j in range(per_volley)]
    )
    return transcripts


def gold_codes(transcript: Transcript) -> dict[int, str]:
    """The codes the gold gives: a fixed pattern over the utterances in reading order."""
    pks = Utterance.objects.filter(volley__transcript=transcript).order_by("volley__index", "index").values_list(
        "pk", flat=True)
    return {pk: CODES[(i + transcript.pk) % len(CODES)] for i, pk in enumerate(pks)}


def gold_globals(transcript: Transcript) -> dict[str, int]:
    """The gold's global ratings: they vary from transcript to transcript (an ICC needs that)."""
    return {key: 2 + (transcript.pk + i) % 4 for i, key in enumerate(miti.GLOBAL_KEYS)}


def code_assignment(assignment: Assignment, codes: dict[int, str], globals_: dict[str, int] | None, actor) -> Assignment:
    """Code every utterance and (when the round rates them) every global through the actions, then submit."""
    version = assignment.version
    for utterance_id, code in codes.items():
        version = actions.save_code(assignment, utterance_id=utterance_id, code=code, version=version,
                                    actor=actor).version
    if assignment.coding_round.globals_rated:
        for scale, value in (globals_ or GLOBALS).items():
            version = actions.set_global(assignment, scale=scale, value=value, version=version, actor=actor).version
    return actions.submit_assignment(assignment, version=version, actor=actor)


def make_gold_set(study, coordinator, coders, n: int = 3, *, name: str = "Gold A", **shape) -> list:
    """``n`` transcripts double-coded identically, adjudicated, and marked gold; returns the gold rows."""
    transcripts = make_transcripts(study, n, **shape)
    source = transcripts[0].source
    base = actions.create_coding_round(study, name="Gold base", sources=[source], coders=coders, overlap=1.0, seed=7)
    for a in Assignment.objects.filter(coding_round=base):
        code_assignment(a, gold_codes(a.transcript), gold_globals(a.transcript), a.coder)
    gold_set = actions.create_gold_set(study, name=name, actor=coordinator)
    golds = []
    for t in transcripts:
        consensus = actions.start_consensus(base, t, actor=coordinator)
        consensus = actions.submit_consensus(consensus, version=consensus.version, actor=coordinator)
        golds.append(actions.mark_gold(gold_set, consensus, actor=coordinator))
    return golds


def noisy(codes: dict[int, str], wrong_every: int) -> dict[int, str]:
    """The gold codes with every ``wrong_every``-th utterance miscoded (0: none)."""
    out = {}
    for i, (pk, code) in enumerate(codes.items()):
        out[pk] = code if not wrong_every or i % wrong_every else ("Q" if code != "Q" else "SR")
    return out


assert set(GLOBALS) == set(miti.GLOBAL_KEYS)
