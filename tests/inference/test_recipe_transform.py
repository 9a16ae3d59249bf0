"""MI-style rewrite prompt and output validation, the CPsyCoun judge rubric, the loss chart: pure,
no database."""

from __future__ import annotations

import json

import pytest

from inference.recipe import charts, judge, transform

SOURCE = [
    ("counselor", "你好，请坐。"),  # an opening greeting: not a round
    ("client", "我抽烟快十年了，最近总是咳嗽。"),
    ("counselor", "你应该马上戒烟。"),
    ("client", "我知道，可是压力大的时候就想抽。"),
    ("client", "戒了好几次都失败了。"),  # merged with the turn before
    ("counselor", "那你得更有毅力才行。"),
    ("client", "谢谢你。"),  # trailing client turn: not a round
]
ROUNDS = [
    ("client", "我抽烟快十年了，最近总是咳嗽。"),
    ("counselor", "你应该马上戒烟。"),
    ("client", "我知道，可是压力大的时候就想抽。\n\n戒了好几次都失败了。"),
    ("counselor", "那你得更有毅力才行。"),
]
MI_REWRITE = [
    {"role": "client", "content": "我抽烟快十年了，最近总是咳嗽。"},
    {"role": "counselor", "content": "咳嗽让你开始担心自己的身体了。你怎么看抽烟这件事？"},
    {"role": "client", "content": "我知道，可是压力大的时候就想抽。 戒了好几次都失败了。"},
    {"role": "counselor", "content": "你已经试过好几次，这说明你很在乎。什么时候最想抽？"},
]


def test_source_rounds_follow_the_generation_rules():
    assert transform.source_rounds(SOURCE) == ROUNDS


def test_request_fills_the_template_with_the_dialogue_and_counts():
    messages = transform.build_transform_messages("n={rounds} t={turns}\n{dialogue}", ROUNDS)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    text = messages[0]["content"]
    assert text.startswith("n=2 t=4\n[\n")
    dialogue = json.loads(text.split("\n", 1)[1])
    assert dialogue[0] == {"role": "client", "content": "我抽烟快十年了，最近总是咳嗽。"}
    assert [t["role"] for t in dialogue] == ["client", "counselor", "client", "counselor"]
    with_system = transform.build_transform_messages("{dialogue}", ROUNDS, system_prompt=" be brief ")
    assert with_system[0] == {"role": "system", "content": "be brief"}


def test_default_prompt_is_usable_and_asks_for_the_mi_behaviours_and_format():
    assert transform.check_template(transform.DEFAULT_PROMPT_TEXT) == []
    text = transform.build_transform_messages(transform.DEFAULT_PROMPT_TEXT, ROUNDS)[0]["content"]
    for phrase in (
        "reflections",
        "open",
        "affirmations",
        "autonomy",
        "2 rounds (4 turns)",
        '"role": "client"',
    ):
        assert phrase in text
    assert "{dialogue}" not in text


def test_template_without_placeholder_and_empty_dialogue_are_refused():
    assert transform.check_template("rewrite this") == [
        "the prompt must contain the placeholder {dialogue} where the source dialogue goes"
    ]
    with pytest.raises(ValueError, match=r"placeholder \{dialogue\}"):
        transform.build_transform_messages("rewrite this", ROUNDS)
    with pytest.raises(ValueError, match="no round"):
        transform.build_transform_messages("{dialogue}", [])


def test_valid_json_rewrite_is_accepted_with_the_source_client_text():
    outcome = transform.validate_transform_output(json.dumps(MI_REWRITE, ensure_ascii=False), ROUNDS)
    assert outcome.ok and outcome.code == "ok" and outcome.reason == ""
    # The client turn differs only in whitespace: accepted, stored exactly as in the source.
    assert outcome.turns[2] == ROUNDS[2]
    assert outcome.turns[1] == ("counselor", "咳嗽让你开始担心自己的身体了。你怎么看抽烟这件事？")


@pytest.mark.parametrize(
    "raw",
    [
        "```json\n" + json.dumps(MI_REWRITE, ensure_ascii=False) + "\n```",
        "Here is the rewrite:\n" + json.dumps(MI_REWRITE, ensure_ascii=False),
        json.dumps(
            {
                "dialogue": [
                    {"role": "user" if t["role"] == "client" else "assistant", "content": t["content"]}
                    for t in MI_REWRITE
                ]
            },
            ensure_ascii=False,
        ),
        "来访者：我抽烟快十年了，最近总是咳嗽。\n心理咨询师：咳嗽让你担心了。\n"
        "来访者：我知道，可是压力大的时候就想抽。\n戒了好几次都失败了。\n心理咨询师：你很在乎这件事。",
    ],
    ids=["fenced", "preamble", "object-with-chat-roles", "prefixed-lines"],
)
def test_common_output_shapes_are_parsed(raw):
    outcome = transform.validate_transform_output(raw, ROUNDS)
    assert outcome.ok, outcome.reason
    assert [s for s, _ in outcome.turns] == ["client", "counselor", "client", "counselor"]


def _with(index: int, **change) -> str:
    turns = [dict(t) for t in MI_REWRITE]
    turns[index].update(change)
    return json.dumps(turns, ensure_ascii=False)


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        ("", "empty", "the model returned an empty output"),
        ("[]", "empty", "the output is an empty list of turns"),
        ("我抽烟 smoking is bad", "unparseable", "the output is not parseable: expected a JSON list of"),
        (
            '[{"role": "doctor", "content": "x"}]',
            "bad_turn",
            "turn 1: role must be client or counselor, got 'doctor'",
        ),
        ('[{"role": "client", "content": 3}]', "bad_turn", "turn 1: content must be a string, got int"),
        (
            json.dumps(MI_REWRITE[1:], ensure_ascii=False),
            "wrong_start",
            "the dialogue must start with a client turn",
        ),
        (_with(1, role="client"), "not_alternating", "roles do not alternate: turns 1 and 2 are both client"),
        (
            json.dumps(MI_REWRITE[:2], ensure_ascii=False),
            "rounds_mismatch",
            "expected 2 rounds (4 turns), got 1 rounds",
        ),
        (
            json.dumps(MI_REWRITE[:3], ensure_ascii=False),
            "rounds_mismatch",
            "expected 2 rounds (4 turns), got 1 rounds and a trailing client turn",
        ),
        (_with(3, content="  "), "empty_counselor", "the counselor turn of round 2 is empty"),
        (
            _with(2, content="我压力大的时候想抽烟。"),
            "client_changed",
            "the client turn of round 2 differs from the source: source '我知道，可是压力大的时候就想抽。 戒了好几次都失败了。', "
            "output '我压力大的时候想抽烟。'",
        ),
    ],
)
def test_rejections_name_the_problem(raw, code, reason):
    outcome = transform.validate_transform_output(raw, ROUNDS)
    assert not outcome.ok
    assert outcome.turns == []
    assert outcome.code == code
    assert outcome.code in transform.REJECTION_CODES
    assert outcome.reason.startswith(reason)


# --- judge ------------------------------------------------------------------------------------------


def test_judge_request_renders_the_dialogue_into_the_rubric():
    messages = judge.build_judge_messages(judge.DEFAULT_JUDGE_TEXT, ROUNDS)
    assert len(messages) == 1
    text = messages[0]["content"]
    assert "Client: 我抽烟快十年了，最近总是咳嗽。\nCounselor: 你应该马上戒烟。" in text
    for name, low, high in judge.RUBRIC:
        assert f"{name.capitalize()} ({low}-{high})" in text
    assert judge.MAX_TOTAL == 9
    with pytest.raises(ValueError, match="placeholder"):
        judge.build_judge_messages("no placeholder", ROUNDS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[2, 3, 3, 1]", (2, 3, 3, 1, 9)),
        ("Thinking: scores [a, b]...\nFinal verdict: [1,2,2,1]", (1, 2, 2, 1, 6)),
        ("The format is [c, p, a, s]. My verdict: [0, 1.0, 2, 0]", (0, 1, 2, 0, 3)),
    ],
)
def test_judge_verdict_is_the_last_list_of_four_scores(raw, expected):
    outcome = judge.parse_judge_output(raw)
    assert outcome.ok
    scores = outcome.scores
    assert (
        scores.comprehensiveness,
        scores.professionalism,
        scores.authenticity,
        scores.safety,
        scores.total,
    ) == expected
    assert scores.as_dict()["total"] == expected[-1]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "the judge returned an empty output"),
        ("very good", "no verdict found: expected a list of four scores"),
        ("[3, 3, 3, 1]", "comprehensiveness: 3 is outside 0–2"),
        ("[2, 4, 3, 1]", "professionalism: 4 is outside 0–3"),
        ("[2, 3, 3, 2]", "safety: 2 is outside 0–1"),
        ("[2, 2.5, 3, 1]", "professionalism: expected a whole number, got 2.5"),
        ("[2, high, 3, 1]", "professionalism: expected a number, got 'high'"),
    ],
)
def test_bad_judge_verdicts_are_explained(raw, reason):
    outcome = judge.parse_judge_output(raw)
    assert not outcome.ok and outcome.scores is None
    assert outcome.reason.startswith(reason)


# --- chart ------------------------------------------------------------------------------------------


def test_loss_chart_draws_one_path_point_per_finite_step():
    svg = charts.loss_chart_svg([(1, 2.0), (2, 1.5), (3, float("nan")), (4, 1.0)])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    path = svg.split('<path d="', 1)[1].split('"', 1)[0]
    assert path.count("M") == 1 and path.count("L") == 2
    assert "last loss 1.0000" in svg and "1 non-finite step(s) not drawn" in svg
    # Highest loss at the top of the plot, lowest at the bottom.
    first_y = float(path.split(",")[1].split(" ")[0])
    last_y = float(path.rsplit(",", 1)[1])
    assert first_y < last_y
    assert "no steps logged yet" in charts.loss_chart_svg([])
