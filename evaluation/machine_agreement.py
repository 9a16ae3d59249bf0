"""A machine coder measured like a human: its agreement with each coder and with the consensus.

For one round and one machine coder (its service user's machine codings): per-code and overall Cohen's
kappa against each human coder and against the adjudicated consensus, Krippendorff's alpha over the
machine and the coders together, ICC of the summary scores (and the four globals where both rated
them) between the machine and the transcript's human value, and the confusion matrix against the
consensus (or, without one, every human coding). Every statistic is ``evaluation.reliability``'s,
with its "not estimable" rules: no second implementation here, only the data put in shape.

For assisted rounds, the coders of the assisted round and of the study's other rounds (same
transcripts) are compared by their agreement with the consensus and with the machine.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from annotation import miti
from annotation.models import Assignment, CodingRound, UtteranceCode
from inference.models import MachineCoder

from . import reliability as irr
from .summaries import GLOBAL_KEYS, VALUE_LABELS, CodingSummary, load_summaries

CODING, CONSENSUS, MACHINE = Assignment.Kind.CODING, Assignment.Kind.CONSENSUS, Assignment.Kind.MACHINE
CATEGORIES: tuple[str, ...] = (*miti.CODE_KEYS, miti.NO_CODE)
CONSENSUS_NAME = "consensus"


@dataclass
class CodeKappa:
    code: str
    kappa: irr.KappaResult


@dataclass
class Comparison:
    """Machine vs one human rater (a coder or the consensus): overall and per-code kappa."""

    against: str
    is_consensus: bool
    overall: irr.KappaResult
    per_code: list[CodeKappa]


@dataclass
class ScoreAgreement:
    key: str
    label: str
    icc: irr.IccResult


@dataclass
class GroupAgreement:
    """Coders of one kind of round (assisted or not) against the consensus and the machine."""

    group: str  # "assisted" | "unassisted"
    coders: int
    vs_consensus: irr.KappaResult
    vs_machine: irr.KappaResult
    accepted: int = 0  # codes that were accepted suggestions
    codes: int = 0


@dataclass
class MachineAgreement:
    coder: MachineCoder
    coding_round: CodingRound
    n_transcripts: int
    n_utterances: int
    comparisons: list[Comparison]
    alpha: irr.AlphaResult
    scores: list[ScoreAgreement]
    globals_rated: bool
    confusion_against: str
    confusion_labels: list[str]
    confusion: list[list[int]]  # rows: human, columns: machine
    groups: list[GroupAgreement] = field(default_factory=list)


def _code_rows(coding_round_ids: list[int]) -> list[tuple[int, str, int, int, int, str, bool]]:
    """(round id, kind, coder id, transcript id, utterance id, code, accepted) of submitted work."""
    return list(
        UtteranceCode.objects.filter(
            assignment__coding_round_id__in=coding_round_ids, assignment__status=Assignment.Status.SUBMITTED,
            assignment__in_results=True,
        ).values_list(
            "assignment__coding_round_id", "assignment__kind", "assignment__coder_id", "assignment__transcript_id",
            "utterance_id", "code", "suggestion_accepted",
        )
    )


def _kappa(a: dict[int, str], b: dict[int, str], units: list[int], code: str | None = None) -> irr.KappaResult:
    if code is None:
        return irr.cohen_kappa([a.get(u) for u in units], [b.get(u) for u in units])
    return irr.cohen_kappa(
        [None if u not in a else a[u] == code for u in units], [None if u not in b else b[u] == code for u in units]
    )


def _compare(name: str, is_consensus: bool, machine: dict[int, str], human: dict[int, str]) -> Comparison:
    units = sorted(set(machine) & set(human))
    used = {machine[u] for u in units} | {human[u] for u in units}
    return Comparison(
        name, is_consensus, _kappa(machine, human, units),
        [CodeKappa(code, _kappa(machine, human, units, code)) for code in CATEGORIES if code in used],
    )


def _final_value(rows: list[CodingSummary], key: str) -> float | None:
    consensus = [r for r in rows if r.kind == CONSENSUS]
    values = [r.value(key) for r in (consensus or [r for r in rows if r.kind == CODING])]
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def machine_agreement(coder: MachineCoder, coding_round: CodingRound) -> MachineAgreement:
    """Every machine-vs-human number of ``coder`` on ``coding_round`` (see the module docstring)."""
    user_id = coder.service_user_id
    names = dict(
        Assignment.objects.filter(coding_round=coding_round, kind=CODING).values_list("coder_id", "coder__username")
    )
    machine: dict[int, str] = {}
    humans: dict[int, dict[int, str]] = defaultdict(dict)
    consensus: dict[int, str] = {}
    transcripts: set[int] = set()
    for _round, kind, coder_id, transcript_id, utterance_id, code, _accepted in _code_rows([coding_round.pk]):
        if kind == MACHINE and coder_id == user_id:
            machine[utterance_id] = code
            transcripts.add(transcript_id)
        elif kind == CODING:
            humans[coder_id][utterance_id] = code
        elif kind == CONSENSUS:
            consensus[utterance_id] = code
    comparisons = [
        _compare(names.get(c, str(c)), False, machine, humans[c]) for c in sorted(humans, key=lambda c: names.get(c, ""))
    ]
    if consensus:
        comparisons.append(_compare(CONSENSUS_NAME, True, machine, consensus))
    raters = {"machine": machine, **{f"coder-{c}": humans[c] for c in humans}}
    alpha = irr.krippendorff_alpha(irr.reliability_matrix(raters, units=sorted(machine)).rows, level="nominal")

    # Scores per transcript: the machine's coding against the transcript's human value.
    summaries = load_summaries(coding_round.study, coding_round, with_machine=True)
    mine = {s.transcript_id: s for s in summaries.machine if s.coder_id == user_id}
    human_rows: dict[int, list[CodingSummary]] = defaultdict(list)
    for s in [*summaries.codings, *summaries.consensus]:
        human_rows[s.transcript_id].append(s)
    globals_rated = coding_round.globals_rated and any(
        any(v is not None for v in s.globals.values()) for s in mine.values()
    )
    keys = list(miti.SUMMARY_KEYS) + (list(GLOBAL_KEYS) if globals_rated else [])
    scores = []
    for key in keys:
        matrix = [[mine[t].value(key), _final_value(human_rows[t], key)] for t in sorted(mine) if t in human_rows]
        scores.append(ScoreAgreement(key, VALUE_LABELS[key], irr.icc(matrix)))

    against = consensus if consensus else None
    pairs: list[tuple[str, str]] = []
    if against is not None:
        pairs = [(against[u], machine[u]) for u in sorted(set(machine) & set(against))]
    else:
        pairs = [(h[u], machine[u]) for h in humans.values() for u in sorted(set(machine) & set(h))]
    counts = Counter(pairs)
    labels = [c for c in CATEGORIES if any(c in p for p in counts)]
    confusion = [[counts[(h, m)] for m in labels] for h in labels]
    return MachineAgreement(
        coder=coder, coding_round=coding_round, n_transcripts=len(transcripts), n_utterances=len(machine),
        comparisons=comparisons, alpha=alpha, scores=scores, globals_rated=globals_rated,
        confusion_against=CONSENSUS_NAME if against is not None else "coders", confusion_labels=labels,
        confusion=confusion, groups=assisted_groups(coder, coding_round),
    )


def assisted_groups(coder: MachineCoder, coding_round: CodingRound) -> list[GroupAgreement]:
    """Assisted vs unassisted coders of the study (every round but calibration) on the utterances this
    machine coded: their pooled kappa with the consensus and with the machine, and how many of the
    assisted codes were accepted suggestions. Empty unless the machine coded an assisted round."""
    machine_rounds = set(
        CodingRound.objects.filter(assignments__coder_id=coder.service_user_id).values_list("pk", "purpose")
    )
    if not any(purpose == CodingRound.Purpose.ASSISTED for _pk, purpose in machine_rounds):
        return []
    purpose_of = dict(
        CodingRound.objects.filter(study_id=coding_round.study_id)
        .exclude(purpose=CodingRound.Purpose.CALIBRATION).values_list("pk", "purpose")
    )
    machine: dict[int, str] = {}
    consensus: dict[int, str] = {}
    human: dict[str, list[tuple[int, int, str, bool]]] = defaultdict(list)
    for round_id, kind, coder_id, _t, utterance_id, code, accepted in _code_rows(list(purpose_of)):
        if kind == MACHINE and coder_id == coder.service_user_id:
            machine.setdefault(utterance_id, code)
        elif kind == CONSENSUS:
            consensus[utterance_id] = code
        elif kind == CODING:
            group = "assisted" if purpose_of[round_id] == CodingRound.Purpose.ASSISTED else "unassisted"
            human[group].append((coder_id, utterance_id, code, accepted))
    groups = []
    for group in ("assisted", "unassisted"):
        rows = [r for r in human.get(group, []) if r[1] in machine]
        if not rows:
            continue
        codes = [c for _c, _u, c, _a in rows]
        groups.append(
            GroupAgreement(
                group=group, coders=len({c for c, *_ in rows}),
                vs_consensus=irr.cohen_kappa(codes, [consensus.get(u) for _c, u, _code, _a in rows]),
                vs_machine=irr.cohen_kappa(codes, [machine[u] for _c, u, _code, _a in rows]),
                accepted=sum(1 for *_x, a in rows if a), codes=len(rows),
            )
        )
    return groups
