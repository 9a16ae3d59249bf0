"""The optional quality screen: an LLM judge scoring a dialogue on the CPsyCoun rubric.

Pure: no Django. CPsyCoun (Zhang et al., ACL Findings 2024) scores counselling on four metrics —
comprehensiveness 0–2, professionalism 0–3, authenticity 0–3, safety 0–1 — and asks the judge to
answer ``[comprehensiveness, professionalism, authenticity, safety]``. CPsyCoun judges one reply
given its history; the screen here applies the same rubric to the counselor turns of a whole
(rewritten) dialogue, which is how a data set is screened before training.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

Message = dict[str, str]
Turn = tuple[str, str]

DEFAULT_JUDGE_NAME = "cpsycoun-judge"
DEFAULT_JUDGE_VERSION = 1

#: (field, lowest, highest) of each score, in the order the judge answers them.
RUBRIC: tuple[tuple[str, int, int], ...] = (
    ("comprehensiveness", 0, 2),
    ("professionalism", 0, 3),
    ("authenticity", 0, 3),
    ("safety", 0, 1),
)
MAX_TOTAL = sum(high for _, _, high in RUBRIC)

# Version 1 of the shipped judge prompt: the CPsyCoun metrics and ranges, with the aspects each
# covers, worded for a whole dialogue. A changed text is a new version.
DEFAULT_JUDGE_TEXT = """\
You are an impartial judge who knows psychology and psychological counselling.
Evaluate the quality of the counselor's turns in the counselling dialogue below, using only this
standard:

Comprehensiveness (0-2): how well the counselor's turns reflect the client's situation and
psychological problems (the client's basic circumstances; the client's psychological problems).

Professionalism (0-3): how professional the counselor is (understanding of the problem; use of
counselling techniques; professional wording that guides the conversation; real help for the
client; a sensible order of reception, assessment, counselling and consolidation).

Authenticity (0-3): how genuine the exchange between client and counselor is (relevant to the
history; understanding and empathy; no wording that may cause misunderstanding or discomfort;
no long speeches, as in a real counselling session).

Safety (0-1): protection of the client (privacy respected, no sensitive personal information
disclosed; the client's thoughts and emotions respected).

Avoid position bias, do not let the length of the turns influence you, and be objective.

Dialogue:
'''
{dialogue}
'''

Answer with your final verdict in exactly this format and nothing after it:
[comprehensiveness score, professionalism score, authenticity score, safety score]
"""

_LIST = re.compile(r"\[\s*([^\[\]]*?)\s*\]")
_SPEAKER_LABEL = {"client": "Client", "counselor": "Counselor", "system": "System"}


@dataclass(frozen=True)
class JudgeScores:
    comprehensiveness: int
    professionalism: int
    authenticity: int
    safety: int

    @property
    def total(self) -> int:
        return self.comprehensiveness + self.professionalism + self.authenticity + self.safety

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class JudgeOutcome:
    """``scores`` when the verdict parsed and every score is in range; else ``reason``."""

    scores: JudgeScores | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.scores is not None


def render_dialogue(turns: Sequence[Turn]) -> str:
    """``Client: ...`` / ``Counselor: ...`` lines, one turn per paragraph."""
    return "\n".join(f"{_SPEAKER_LABEL.get(speaker, speaker)}: {text}" for speaker, text in turns)


def build_judge_messages(template: str, turns: Sequence[Turn]) -> list[Message]:
    """The judge request for one dialogue: a single user message (the template, filled)."""
    if "{dialogue}" not in template:
        raise ValueError("the judge prompt must contain the placeholder {dialogue}")
    return [{"role": "user", "content": template.replace("{dialogue}", render_dialogue(turns))}]


def parse_judge_output(raw: str) -> JudgeOutcome:
    """Read the verdict ``[c, p, a, s]`` — the last bracketed list of four numbers in the output,
    since a judge that "thinks step by step" may quote other lists first."""
    if not raw or not raw.strip():
        return JudgeOutcome(None, "the judge returned an empty output")
    verdict = None
    for match in _LIST.finditer(raw):
        parts = [p.strip() for p in match.group(1).split(",")]
        if len(parts) == len(RUBRIC):
            verdict = parts
    if verdict is None:
        return JudgeOutcome(
            None,
            "no verdict found: expected a list of four scores "
            f"[comprehensiveness, professionalism, authenticity, safety], got {raw.strip()[:80]!r}",
        )
    values: list[int] = []
    for (name, low, high), part in zip(RUBRIC, verdict, strict=True):
        try:
            number = float(part)
        except ValueError:
            return JudgeOutcome(None, f"{name}: expected a number, got {part!r}")
        if number != int(number):
            return JudgeOutcome(None, f"{name}: expected a whole number, got {part}")
        if not low <= number <= high:
            return JudgeOutcome(None, f"{name}: {int(number)} is outside {low}–{high}")
        values.append(int(number))
    return JudgeOutcome(JudgeScores(*values))
