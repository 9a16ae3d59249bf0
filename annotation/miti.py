"""The MITI 4.2.1 coding instrument as plain data and pure functions (no Django).

Source: Moyers, Manuel & Ernst, *Motivational Interviewing Treatment Integrity Coding Manual 4.2.1*
(CASAA, 2015), paraphrased in docs/miti.md. Everything a coder sees (codes, hotkeys, hints, global
anchors) and everything a report computes (per-volley tally, summary scores, Fair/Good thresholds)
comes from this one module, so the coding page, the API, the Celery exports and the tests agree.

User-visible strings are plain English marked with ``gettext_noop`` below, so Django's
``makemessages`` extracts them into the translation catalogue (``locale/``, the one place their
Simplified Chinese lives) and the pages translate them when they render them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

# MITI 4 scores are not comparable with MITI 3.x, so every stored coding carries this tag.
INSTRUMENT_VERSION = "MITI 4.2.1"

NO_CODE = "NONE"  # an explicit "no code" decision, distinct from None (= not coded yet)

CodeGroup = Literal["mia", "mina"]
ScaleGroup = Literal["technical", "relational"]
ThresholdStatus = Literal["good", "fair", "below", "n/a"]


def gettext_noop(message: str) -> str:
    """Mark ``message`` for the translation catalogue; return it unchanged.

    This module imports no Django, so it cannot translate. Django's ``makemessages`` runs xgettext with
    ``--keyword=gettext_noop``, which extracts the literal argument of any call of this name; the pages
    translate the English text at render time (``{% translate code.name %}``, ``gettext(template)``).
    """
    return message


# --------------------------------------------------------------------------------------------------
# Behaviour codes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BehaviourCode:
    """One MITI behaviour code as shown on the coding page."""

    key: str  # canonical key stored in the database, e.g. "CR"
    name: str  # English name, e.g. "Complex Reflection"
    short: str  # one-line description for the button tooltip / hints panel
    group: CodeGroup | None  # summary total it feeds: MI-adherent, MI non-adherent, or none
    hotkey: str  # single key for keyboard coding


BEHAVIOUR_CODES: tuple[BehaviourCode, ...] = (
    BehaviourCode("GI", gettext_noop("Giving Information"),
                  gettext_noop("Neutral information, education, feedback or professional opinion"),
                  None, "g"),
    BehaviourCode("PERSUADE", gettext_noop("Persuade"),
                  gettext_noop("Overt attempt to change opinions or behaviour: arguments, advice or warnings "
                               "without permission"), "mina", "p"),
    BehaviourCode("PERSUADE_WITH", gettext_noop("Persuade with Permission"),
                  gettext_noop("Persuasion after the client asked, after permission was sought, or framed so "
                               "the client may discount it"), None, "w"),
    BehaviourCode("Q", gettext_noop("Question"),
                  gettext_noop("Any question (open and closed are not distinguished in MITI 4)"), None, "q"),
    BehaviourCode("SR", gettext_noop("Simple Reflection"),
                  gettext_noop("Conveys understanding and adds little or no meaning"), None, "s"),
    BehaviourCode("CR", gettext_noop("Complex Reflection"),
                  gettext_noop("Adds substantial meaning or emphasis, a deeper picture, or a directional "
                               "summary"), None, "c"),
    BehaviourCode("AF", gettext_noop("Affirm"),
                  gettext_noop("Genuine statement about the client's strengths, efforts or worth"),
                  "mia", "a"),
    # "l" for coLlaborate: "s" is taken by Simple Reflection.
    BehaviourCode("SEEK", gettext_noop("Seeking Collaboration"),
                  gettext_noop("Explicitly shares power: asks permission, seeks consensus, asks the client's "
                               "view of information"), "mia", "l"),
    BehaviourCode("EMPHASIZE", gettext_noop("Emphasizing Autonomy"),
                  gettext_noop("Places choice and control over change with the client"), "mia", "e"),
    BehaviourCode("CONFRONT", gettext_noop("Confront"),
                  gettext_noop("Disagrees, argues, corrects, shames, blames, warns or moralises with "
                               "disapproval"), "mina", "x"),
)

CODE_KEYS: tuple[str, ...] = tuple(code.key for code in BEHAVIOUR_CODES)
CODE_BY_KEY: dict[str, BehaviourCode] = {code.key: code for code in BEHAVIOUR_CODES}

# "No code" is a decision a coder records, so it gets a button and two keys like the real codes.
NO_CODE_ENTRY = BehaviourCode(
    NO_CODE, gettext_noop("No code"),
    gettext_noop("Greeting, structuring, facilitative \"okay\", support, plain self-disclosure, off-topic "
                 "or incomplete thought"), None, "0",
)
NO_CODE_HOTKEYS: tuple[str, ...] = ("0", "n")

# Keys the coding and consensus pages use besides the codes (j/k move, u undo, ? help, 1-5 rate,
# > next transcript, [ and ] accept coder A's/B's code; docs/keyboard.md); "0" and "n" belong to
# NO_CODE. Code hotkeys must never collide with these.
RESERVED_KEYS: frozenset[str] = frozenset("jku?12345>[]")

HOTKEYS: dict[str, str] = {code.hotkey: code.key for code in BEHAVIOUR_CODES}
HOTKEYS.update({key: NO_CODE for key in NO_CODE_HOTKEYS})

GROUP_LABELS: dict[str, str] = {"mia": gettext_noop("MI-adherent"), "mina": gettext_noop("MI non-adherent")}
MIA_CODES: tuple[str, ...] = tuple(c.key for c in BEHAVIOUR_CODES if c.group == "mia")
MINA_CODES: tuple[str, ...] = tuple(c.key for c in BEHAVIOUR_CODES if c.group == "mina")


UNKNOWN_CODE = gettext_noop("unknown MITI behaviour code {code}{hint}; expected one of: {allowed}")
DID_YOU_MEAN = gettext_noop(" (did you mean {suggestion}?)")


def unknown_code_message(key: object, translate: Callable[[str], str] = lambda text: text) -> str:
    """Why ``key`` is refused, in the language ``translate`` (Django's ``gettext``) gives."""
    hint = ""
    if isinstance(key, str) and key.strip().upper() in (*CODE_KEYS, NO_CODE):
        hint = translate(DID_YOU_MEAN).format(suggestion=repr(key.strip().upper()))
    return translate(UNKNOWN_CODE).format(code=repr(key), hint=hint, allowed=", ".join((*CODE_KEYS, NO_CODE)))


def validate_code(key: object) -> str:
    """Return ``key`` if it is a behaviour code key or ``NO_CODE``; raise ValueError otherwise."""
    if isinstance(key, str) and (key in CODE_BY_KEY or key == NO_CODE):
        return key
    raise ValueError(unknown_code_message(key))


# --------------------------------------------------------------------------------------------------
# Global scales
# --------------------------------------------------------------------------------------------------

GLOBAL_MIN = 1
GLOBAL_MAX = 5


@dataclass(frozen=True)
class GlobalScale:
    """One of the four MITI global scales, rated as an integer GLOBAL_MIN..GLOBAL_MAX."""

    key: str
    name: str
    group: ScaleGroup
    anchor_low: str  # what a 1 looks like
    anchor_high: str  # what a 5 looks like
    default_hint: int = 3  # the manual has coders start from 3 and move up or down
    note: str = ""


GLOBAL_SCALES: tuple[GlobalScale, ...] = (
    GlobalScale("CULTIVATING_CHANGE_TALK", gettext_noop("Cultivating Change Talk"), "technical",
                gettext_noop("No attention to the client's change talk"),
                gettext_noop("Marked, consistent effort to deepen and strengthen change talk")),
    GlobalScale("SOFTENING_SUSTAIN_TALK", gettext_noop("Softening Sustain Talk"), "technical",
                gettext_noop("Consistently strengthens the status quo (sustain talk)"),
                gettext_noop("Marked, consistent effort to soften sustain talk"),
                note=gettext_noop("A high score is possible when no sustain talk is present")),
    GlobalScale("PARTNERSHIP", gettext_noop("Partnership"), "relational",
                gettext_noop("Keeps the expert role all session"),
                gettext_noop("Client input substantially shapes the session")),
    GlobalScale("EMPATHY", gettext_noop("Empathy"), "relational",
                gettext_noop("No attention to the client's perspective"),
                gettext_noop("Deep understanding of the client's perspective, including what was not said")),
)
GLOBAL_KEYS: tuple[str, ...] = tuple(scale.key for scale in GLOBAL_SCALES)
GLOBAL_BY_KEY: dict[str, GlobalScale] = {scale.key: scale for scale in GLOBAL_SCALES}
SCALE_GROUP_LABELS: dict[str, str] = {
    "technical": gettext_noop("Technical"), "relational": gettext_noop("Relational"),
}


def validate_global(scale: object, value: object) -> int:
    """Return ``value`` if it is a valid rating for global ``scale``; raise ValueError otherwise."""
    if not isinstance(scale, str) or scale not in GLOBAL_BY_KEY:
        raise ValueError(f"unknown MITI global scale {scale!r}; expected one of: {', '.join(GLOBAL_KEYS)}")
    # bool is an int subclass; True must not silently become a rating of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"global {scale}: rating must be a whole number, got {value!r}")
    if not GLOBAL_MIN <= value <= GLOBAL_MAX:
        raise ValueError(f"global {scale}: rating must be between {GLOBAL_MIN} and {GLOBAL_MAX}, got {value}")
    return value


# --------------------------------------------------------------------------------------------------
# Per-volley tally
# --------------------------------------------------------------------------------------------------

# A volley contributes at most one code per slot (so at most 8 codes).
TALLY_SLOTS: tuple[tuple[str, ...], ...] = (
    ("GI",), ("PERSUADE", "PERSUADE_WITH"), ("Q",), ("SR", "CR"),
    ("AF",), ("SEEK",), ("EMPHASIZE",), ("CONFRONT",),
)

# Message templates for merges, kept as templates (not only formatted text) so the UI can translate
# the template with gettext and then fill in the numbers.
MERGE_REFLECTIONS_CR = gettext_noop(
    "{n} reflections in one volley count once: CR because at least one is complex")
MERGE_REFLECTIONS_SR = gettext_noop("{n} reflections in one volley count once: SR because none is complex")
MERGE_QUESTIONS = gettext_noop("{n} questions in one volley count as one Q")
MERGE_PERSUADE_MIXED = gettext_noop(
    "{n} persuade codes in one volley (PERSUADE and PERSUADE_WITH) count once: "
    "PERSUADE_WITH because permission framed the volley")
MERGE_REPEATED = gettext_noop("{n} × {code} in one volley count once")
MERGE_TEMPLATES: tuple[str, ...] = (
    MERGE_REFLECTIONS_CR, MERGE_REFLECTIONS_SR, MERGE_QUESTIONS, MERGE_PERSUADE_MIXED, MERGE_REPEATED,
)


@dataclass(frozen=True)
class MergeNote:
    """One applied per-volley rule: a translatable template plus its parameters."""

    template: str
    params: dict[str, object]

    @property
    def text(self) -> str:
        return self.template.format(**self.params)


@dataclass(frozen=True)
class VolleyTally:
    """What one volley contributes to the transcript counts, and why."""

    counts: dict[str, int]  # all 10 code keys, each 0 or 1
    notes: list[MergeNote] = field(default_factory=list)

    @property
    def merges(self) -> list[str]:
        """Readable explanation of each rule applied, e.g. "3 questions in one volley count as one Q"."""
        return [note.text for note in self.notes]


def tally_volley(codes: Sequence[str | None]) -> VolleyTally:
    """Apply the MITI per-volley rules to the codes of one volley's utterances, in order.

    ``None`` (not coded yet) and ``NO_CODE`` contribute nothing. Each slot counts at most once:
    several reflections give CR if any is complex, else SR; several questions give one Q; repeats of
    any other code give one. A reflection followed by "is that right?" gives both SR/CR and Q, because
    they sit in different slots.
    """
    seen: Counter[str] = Counter()
    for index, code in enumerate(codes):
        if code is None or code == NO_CODE:
            continue
        try:
            validate_code(code)
        except ValueError as exc:
            raise ValueError(f"utterance {index + 1} of the volley: {exc}") from None
        seen[code] += 1

    counts = {key: 0 for key in CODE_KEYS}
    notes: list[MergeNote] = []
    for slot in TALLY_SLOTS:
        n = sum(seen[key] for key in slot)
        if n == 0:
            continue
        if slot == ("SR", "CR"):
            counts["CR" if seen["CR"] else "SR"] = 1
            if n > 1:
                template = MERGE_REFLECTIONS_CR if seen["CR"] else MERGE_REFLECTIONS_SR
                notes.append(MergeNote(template, {"n": n}))
        elif slot == ("PERSUADE", "PERSUADE_WITH"):
            # docs/miti.md, "Per-volley tally": the slot holds PERSUADE *or* PERSUADE_WITH, and when
            # both occur in one utterance the manual codes PERSUADE_WITH only. An utterance here carries one code, so the
            # volley rule is ours to state: if any utterance of the volley is PERSUADE_WITH, the slot
            # counts once as PERSUADE_WITH; only a volley whose persuasion is all without permission
            # counts PERSUADE. Why: (1) the manual's own tie-break between the two is PERSUADE_WITH;
            # (2) our utterances come from mechanical punctuation splitting, so one "complete thought"
            # in the manual's sense (advice plus "but it's your call") may span two of our utterances;
            # (3) the client hears the volley as one turn, and permission sought anywhere in it lets
            # them discount the advice. Cost, accepted: a volley mixing un-permitted with permitted
            # advice adds nothing to MI non-adherent (MINA).
            winner = "PERSUADE_WITH" if seen["PERSUADE_WITH"] else "PERSUADE"
            counts[winner] = 1
            if seen["PERSUADE"] and seen["PERSUADE_WITH"]:
                notes.append(MergeNote(MERGE_PERSUADE_MIXED, {"n": n}))
            elif n > 1:
                notes.append(MergeNote(MERGE_REPEATED, {"n": n, "code": winner}))
        else:
            (key,) = slot
            counts[key] = 1
            if n > 1 and key == "Q":
                notes.append(MergeNote(MERGE_QUESTIONS, {"n": n}))
            elif n > 1:
                notes.append(MergeNote(MERGE_REPEATED, {"n": n, "code": key}))
    return VolleyTally(counts=counts, notes=notes)


def tally_transcript(volleys: Sequence[Sequence[str | None]]) -> dict[str, int]:
    """Sum the per-volley tallies of a transcript: a count for each of the 10 code keys."""
    totals = {key: 0 for key in CODE_KEYS}
    for index, volley in enumerate(volleys):
        try:
            tally = tally_volley(volley)
        except ValueError as exc:
            raise ValueError(f"volley {index + 1}: {exc}") from None
        for key, count in tally.counts.items():
            totals[key] += count
    return totals


# --------------------------------------------------------------------------------------------------
# Summary scores and thresholds
# --------------------------------------------------------------------------------------------------

# The six summary scores of the manual, in report order.
SUMMARY_KEYS: tuple[str, ...] = ("technical", "relational", "pct_cr", "r_to_q", "mia", "mina")
# Reported as raw counts only (the manual folds them into no total).
RAW_COUNT_KEYS: tuple[str, ...] = ("gi", "persuade_with")
# Scores we derive that the manual does not define; every display must say so.
DERIVED_KEYS: tuple[str, ...] = ("mi_adherent_share",)
ALL_SUMMARY_KEYS: tuple[str, ...] = SUMMARY_KEYS + RAW_COUNT_KEYS + DERIVED_KEYS

SUMMARY_LABELS: dict[str, str] = {
    "technical": gettext_noop("Technical global"),
    "relational": gettext_noop("Relational global"),
    "pct_cr": gettext_noop("% Complex Reflection"),
    "r_to_q": gettext_noop("Reflection-to-Question ratio"),
    "mia": gettext_noop("Total MI-Adherent"),
    "mina": gettext_noop("Total MI Non-Adherent"),
    "gi": gettext_noop("Giving Information (count)"),
    "persuade_with": gettext_noop("Persuade with Permission (count)"),
    "mi_adherent_share": gettext_noop("MI-adherent share (derived, not a MITI score)"),
}
SUMMARY_FORMULAS: dict[str, str] = {
    "technical": "(CCT + SST) / 2",
    "relational": gettext_noop("(Partnership + Empathy) / 2"),
    "pct_cr": "CR / (SR + CR)",
    "r_to_q": "(SR + CR) / Q",
    "mia": "SEEK + AF + EMPHASIZE",
    "mina": "CONFRONT + PERSUADE",
    "gi": "GI",
    "persuade_with": "PERSUADE_WITH",
    "mi_adherent_share": "MIA / (MIA + MINA)",
}


@dataclass(frozen=True)
class Threshold:
    fair: float
    good: float


# The manual's Fair/Good cut-offs (expert opinion, per the manual). pct_cr is a fraction 0..1 here,
# matching SummaryScores.pct_cr; the UI multiplies by 100 for display.
THRESHOLDS: dict[str, Threshold] = {
    "technical": Threshold(fair=3.0, good=4.0),
    "relational": Threshold(fair=3.5, good=4.0),
    "pct_cr": Threshold(fair=0.40, good=0.50),
    "r_to_q": Threshold(fair=1.0, good=2.0),
}
THRESHOLD_LABELS: dict[str, str] = {
    "good": gettext_noop("Good"), "fair": gettext_noop("Fair"), "below": gettext_noop("Below threshold"),
    "n/a": gettext_noop("n/a"),
}


@dataclass(frozen=True)
class SummaryScores:
    """MITI summary scores of one coded transcript; None means undefined (show "n/a")."""

    technical: float | None
    relational: float | None
    pct_cr: float | None  # fraction 0..1, not a percentage
    r_to_q: float | None
    mia: int
    mina: int
    gi: int
    persuade_with: int
    mi_adherent_share: float | None  # derived, non-manual: MIA / (MIA + MINA)

    def as_dict(self) -> dict[str, float | int | None]:
        """Scores keyed in ALL_SUMMARY_KEYS order, e.g. for CSV export."""
        return {key: getattr(self, key) for key in ALL_SUMMARY_KEYS}


def _ratio(numerator: int | float, denominator: int | float) -> float | None:
    # A zero denominator is "undefined", never 0 and never a ZeroDivisionError
    # (docs/miti.md, "Undefined values").
    return None if denominator == 0 else numerator / denominator


def summary_scores(counts: Mapping[str, int], globals_: Mapping[str, int | None]) -> SummaryScores:
    """Compute the MITI summary scores from transcript counts and the four global ratings.

    ``counts`` maps code keys to tallied counts (a missing key counts 0). ``globals_`` maps global
    scale keys to a rating or None (not rated); a global score is None when either of its two ratings
    is missing. Ratios are None when their denominator is zero.
    """
    for key, value in counts.items():
        if key not in CODE_BY_KEY:
            expected = ", ".join(CODE_KEYS)
            raise ValueError(f"counts: unknown behaviour code {key!r}; expected one of: {expected}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"counts: {key} must be a non-negative whole number, got {value!r}")
    ratings: dict[str, int | None] = {}
    for key, rating in globals_.items():
        if key not in GLOBAL_BY_KEY:
            expected = ", ".join(GLOBAL_KEYS)
            raise ValueError(f"globals: unknown global scale {key!r}; expected one of: {expected}")
        ratings[key] = None if rating is None else validate_global(key, rating)

    def count(key: str) -> int:
        return counts.get(key, 0)

    def mean_of(a: str, b: str) -> float | None:
        first, second = ratings.get(a), ratings.get(b)
        return None if first is None or second is None else (first + second) / 2

    reflections = count("SR") + count("CR")
    mia = count("SEEK") + count("AF") + count("EMPHASIZE")
    mina = count("CONFRONT") + count("PERSUADE")
    return SummaryScores(
        technical=mean_of("CULTIVATING_CHANGE_TALK", "SOFTENING_SUSTAIN_TALK"),
        relational=mean_of("PARTNERSHIP", "EMPATHY"),
        pct_cr=_ratio(count("CR"), reflections),
        r_to_q=_ratio(reflections, count("Q")),
        mia=mia,
        mina=mina,
        gi=count("GI"),
        persuade_with=count("PERSUADE_WITH"),
        mi_adherent_share=_ratio(mia, mia + mina),
    )


def threshold_status(key: str, value: float | None) -> ThresholdStatus | None:
    """Classify a summary score against the manual's cut-offs.

    Returns "good" / "fair" when ``value`` is at least that cut-off, "below" under Fair, "n/a" when
    the score is undefined (None), and None for scores that have no thresholds (MIA, MINA, raw
    counts, derived scores).
    """
    if key not in ALL_SUMMARY_KEYS:
        raise ValueError(f"unknown summary score {key!r}; expected one of: {', '.join(ALL_SUMMARY_KEYS)}")
    threshold = THRESHOLDS.get(key)
    if threshold is None:
        return None
    if value is None:
        return "n/a"
    if value >= threshold.good:
        return "good"
    if value >= threshold.fair:
        return "fair"
    return "below"


# --------------------------------------------------------------------------------------------------
# Coding hints
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    """A "when in doubt" default; ``codes`` are the buttons it concerns, so the UI can show it there."""

    text: str
    codes: tuple[str, ...]


WHEN_IN_DOUBT: tuple[Hint, ...] = (
    Hint(gettext_noop("Simple over Complex Reflection (SR over CR)"), ("SR", "CR")),
    Hint(gettext_noop("Giving Information over Persuade"), ("GI", "PERSUADE")),
    Hint(gettext_noop("Giving Information over Persuade with Permission"), ("GI", "PERSUADE_WITH")),
    Hint(gettext_noop("The other code over an MI-adherent code"), MIA_CODES),
    Hint(gettext_noop("Among MI-adherent codes choose the lower in Emphasize > Seek > Affirm "
                      "(Seek over Emphasize, Affirm over Seek)"), ("EMPHASIZE", "SEEK", "AF")),
    Hint(gettext_noop("Affirm over a reflection"), ("AF", "SR", "CR")),
    Hint(gettext_noop("Unsure between Confront and a reflection: no code"),
         ("CONFRONT", "SR", "CR", NO_CODE)),
    Hint(gettext_noop("Confront over Question"), ("CONFRONT", "Q")),
    Hint(gettext_noop("Fewer parses over more"), ()),
    Hint(gettext_noop("Affirm \"three strikes\": stop coding repeated affirmations after two or three"),
         ("AF",)),
)

# The per-volley and per-utterance rules, stated for the hints panel next to the live tally.
VOLLEY_RULES: tuple[str, ...] = (
    gettext_noop("A volley counts at most one of each: GI, Persuade or Persuade with Permission, Q, "
                 "SR or CR, AF, Seek, Emphasize, Confront"),
    gettext_noop("Several reflections in one volley count once: CR if any is complex, else SR"),
    gettext_noop("Several questions in one volley count as one Q"),
    gettext_noop("A reflection followed by \"is that right?\" counts as both the reflection and Q"),
    gettext_noop("Persuade and Persuade with Permission in the same utterance: "
                 "code Persuade with Permission"),
    gettext_noop("Persuade and Persuade with Permission in one volley count once, "
                 "as Persuade with Permission"),
    gettext_noop("Different MI-adherent codes in one volley all count (e.g. Affirm and Emphasize)"),
    gettext_noop("Only the counselor is coded; each utterance gets one code or No code"),
)


def hints_for(code: str) -> tuple[Hint, ...]:
    """The "when in doubt" hints that concern ``code``."""
    validate_code(code)
    return tuple(hint for hint in WHEN_IN_DOUBT if code in hint.codes)
