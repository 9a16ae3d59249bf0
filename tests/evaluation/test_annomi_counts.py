"""AnnoMI labels counted as MITI counts them: %CR and R:Q per mi_quality against pandas on the CSV.

docs/miti.md, "Labels imported from AnnoMI". The reference below reads ``AnnoMI-full.csv`` with pandas
only — none of the platform's code: each (transcript, annotator) pair is one coding; consecutive
therapist rows form one volley; a volley counts one reflection (complex if any of its rows is complex)
and one question if any row of it is flagged so; %CR and R:Q per coding, undefined ratios (no
reflection / no question) left out; a transcript's value is the mean over its codings; then the mean
per ``mi_quality``. The platform imports the same file as a coding round and its stored summaries
must give each group mean within 0.002. Skipped when the shared data is absent.
"""

from __future__ import annotations

import pandas as pd
import pytest

from annotation import actions
from annotation.models import AdditionalCode, Dialogue, Transcript
from evaluation.summaries import load_summaries
from tests.conftest import shared_data

pytestmark = pytest.mark.django_db

TOLERANCE = 0.002


def _reference(path) -> pd.DataFrame:
    df = pd.read_csv(path, keep_default_na=False).sort_values(["transcript_id", "annotator_id", "utterance_id"])
    quality = df.groupby("transcript_id").mi_quality.first()
    rows = []
    for (transcript, annotator), coding in df.groupby(["transcript_id", "annotator_id"], sort=True):
        volley = (coding.interlocutor != coding.interlocutor.shift()).cumsum()
        therapist = coding[coding.interlocutor == "therapist"]
        # the flags; a row whose main behaviour is "reflection" with subtype n/a is a (simple) reflection
        reflection = (therapist.reflection_exists == "True") | (therapist.main_therapist_behaviour == "reflection")
        flags = pd.DataFrame({
            "volley": volley[therapist.index],
            "reflection": reflection,
            "complex": reflection & (therapist.reflection_subtype == "complex"),
            "question": therapist.question_exists == "True",
        }).groupby("volley").any()
        cr = int(flags.complex.sum())
        sr = int((flags.reflection & ~flags.complex).sum())
        q = int(flags.question.sum())
        rows.append({
            "transcript": transcript, "annotator": annotator,
            "pct_cr": cr / (sr + cr) if sr + cr else None, "r_to_q": (sr + cr) / q if q else None,
        })
    codings = pd.DataFrame(rows)
    per_transcript = codings.groupby("transcript")[["pct_cr", "r_to_q"]].mean()  # NaN (undefined) left out
    per_transcript["mi_quality"] = quality.loc[per_transcript.index]
    return per_transcript.groupby("mi_quality")[["pct_cr", "r_to_q"]].mean()


def test_annomi_counts_equal_an_independent_computation(study, coordinator) -> None:
    path = shared_data("AnnoMI", "AnnoMI-full.csv")
    expected = _reference(path)
    imported = actions.import_annomi_round(study, path, round_name="AnnoMI experts", created_by=coordinator)
    # rows flagging a second (or third) behaviour keep it as an additional code
    assert imported.additional_codes == AdditionalCode.objects.count() > 400

    data = load_summaries(study, imported.coding_round)
    quality = dict(
        Transcript.objects.filter(source=imported.source).values_list("id", "dialogue__metadata__mi_quality")
    )
    platform = pd.DataFrame(
        [{"transcript": s.transcript_id, "pct_cr": s.scores["pct_cr"], "r_to_q": s.scores["r_to_q"]}
         for s in data.codings]
    ).astype({"pct_cr": float, "r_to_q": float})
    per_transcript = platform.groupby("transcript")[["pct_cr", "r_to_q"]].mean()
    per_transcript["mi_quality"] = [quality[t] for t in per_transcript.index]
    got = per_transcript.groupby("mi_quality")[["pct_cr", "r_to_q"]].mean()

    print("\nreference:\n", expected, "\nplatform:\n", got)
    assert sorted(got.index) == sorted(expected.index) == ["high", "low"]
    assert len(data.codings) == 126 + 7 * 10 and Dialogue.objects.filter(study=study).count() == 133
    for group in expected.index:
        for key in ("pct_cr", "r_to_q"):
            assert abs(got.loc[group, key] - expected.loc[group, key]) <= TOLERANCE, (group, key)
