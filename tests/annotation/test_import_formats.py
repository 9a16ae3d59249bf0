"""Issue 13's formats and checks, on self-written fixtures: speaker-prefixed text and JSON lists, CSV and
Parquet turn tables, OpenAI chat JSONL; detection that explains itself; turn order and rounds checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.parsers import (
    FORMATS,
    KNOWN_PAIRS,
    ImportFormatError,
    ImportOptions,
    ParsedDialogue,
    detect_format,
    parse_bytes,
    parse_path,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"
SPEAKERS = FIXTURES / "speakers"
BAD = FIXTURES / "bad"
CSV_COLUMNS = ImportOptions(dialogue_column="session", speaker_column="who", text_column="utterance")


def turns_of(dialogue: ParsedDialogue) -> list[tuple[str, str]]:
    return [(t.speaker, t.text) for t in dialogue.turns]


def refused(data: bytes, filename: str, fmt: str | None = None, options: ImportOptions | None = None) -> str:
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, filename, fmt, options=options)
    return str(info.value)


# ---------------------------------------------------------------- speaker-prefixed text


def test_text_with_two_dialogues_separated_by_blank_lines():
    result = parse_path(SPEAKERS / "sessions_tc.txt")
    assert result.format == "prefixed"
    first, second = result.dialogues
    assert (first.external_id, second.external_id) == ("sessions_tc-1", "sessions_tc-2")
    assert turns_of(first) == [
        ("counselor", "What would you like to talk about today?"),
        ("client", "My drinking, I guess."),
        ("counselor", "You have been thinking about it."),
        ("client", "Yes. My wife is worried.\n\nIt started after I lost my job."),  # a paragraph continues
        ("counselor", "Losing the job and the drinking seem connected for you."),
    ]
    assert (first.rounds, second.rounds) == (2, 1)
    assert first.metadata == {"speaker_prefixes": {"client": "C", "counselor": "T"}}
    assert first.origin_record == "line 1" and second.origin_record == "line 10"
    assert result.warnings == [
        f"{SPEAKERS / 'sessions_tc.txt'}: read as 2 dialogues, separated by two or more blank lines "
        "(they start at lines 1, 10)"
    ]


def test_text_with_ascii_and_full_width_colons_and_crlf():
    result = parse_path(SPEAKERS / "mixed_colons.txt")
    (dialogue,) = result.dialogues
    assert (result.format, dialogue.external_id, dialogue.rounds) == ("prefixed", "mixed_colons", 1)
    assert turns_of(dialogue) == [
        ("counselor", "How are you today?"),
        ("client", "Tired.\n\nVery tired."),
        ("counselor", "Tell me more about the tiredness."),
        ("client", "I work two jobs."),
    ]


@pytest.mark.parametrize("pair", KNOWN_PAIRS, ids=lambda p: f"{p.client}/{p.counselor}")
@pytest.mark.parametrize("colon", [":", "："])
def test_every_known_pair_is_detected_with_either_colon(pair, colon):
    data = f"{pair.client}{colon} I feel stuck.\n{pair.counselor}{colon} Stuck how?\n".encode()
    result = parse_bytes(data, "session.txt")
    assert turns_of(result.dialogues[0]) == [("client", "I feel stuck."), ("counselor", "Stuck how?")]
    # CPsyCounD's own pair keeps its reader (one dialogue per file, source CPsyCounD)
    expected = "cpsycound" if (pair.client, pair.counselor) == ("来访者", "心理咨询师") else "prefixed"
    assert result.format == expected


def test_cpsycoune_pair_maps_qiuzhuzhe_to_client_and_zhichizhe_to_counselor():
    result = parse_bytes("支持者：你好。\n求助者：我很难过。\n支持者：你很难过。\n".encode(), "e.txt")
    assert [t.speaker for t in result.dialogues[0].turns] == ["counselor", "client", "counselor"]


def test_prefixes_given_by_the_coordinator():
    data = "甲：我想戒烟。\n乙：你想戒烟。\n甲：但是很难。\n乙：戒烟对你来说很难。\n".encode()
    message = refused(data, "notes.txt")
    assert "Closest: prefixed — looks like text with speaker prefixes '甲：'/'乙：', which are not a known pair" in message
    assert "choose 'prefixed' and name the client and counselor prefixes" in message
    # the colon is optional in what the coordinator types
    for options in (ImportOptions(client_prefix="甲", counselor_prefix="乙"),
                    ImportOptions(client_prefix="甲：", counselor_prefix="乙:")):
        result = parse_bytes(data, "notes.txt", options=options)
        assert result.format == "prefixed" and result.dialogues[0].rounds == 2
        assert result.dialogues[0].metadata == {"speaker_prefixes": {"client": "甲", "counselor": "乙"}}


def test_prefix_pairs_are_named_in_full():
    message = refused(b"A: hi\nB: hello\n", "x.txt", options=ImportOptions(client_prefix="A"))
    assert message == "x.txt, field 'counselor_prefix': name both the client and the counselor prefix"


def test_text_before_the_first_prefix_in_a_file_of_several_dialogues():
    data = b"C: hi\nT: hello\n\n\nSession two\nC: again\nT: welcome back\n"
    assert refused(data, "two.txt") == (
        "two.txt, line 5, field 'speaker': text before the first speaker prefix (a turn starts with 'C：' or "
        "'T：'; two or more blank lines in a row start a new dialogue)"
    )


# ---------------------------------------------------------------- JSON lists of prefixed strings (CPsyCounE)


def test_json_list_of_prefixed_strings_is_one_dialogue():
    result = parse_path(SPEAKERS / "zh_counselling.json")
    (dialogue,) = result.dialogues
    assert (result.format, dialogue.external_id, dialogue.rounds) == ("prefixed", "zh_counselling", 2)
    assert turns_of(dialogue) == [
        ("client", "我最近总是很焦虑，晚上睡不着。"),
        ("counselor", "听起来焦虑已经影响到你的睡眠了。"),
        ("client", "是的，尤其是考试前。\n\n我怕自己考不好。"),  # plain transcripts merge quietly
        ("counselor", "考试让你担心自己的表现。"),
    ]
    assert result.warnings == []


def test_json_list_of_lists_and_jsonl_of_lists():
    dialogues = [["Client: I drink.", "Counselor: You drink."], ["Client: I smoke.", "Counselor: You smoke."]]
    listed = parse_bytes(json.dumps(dialogues).encode(), "batch.json")
    lines = parse_bytes("\n".join(json.dumps(d) for d in dialogues).encode(), "batch.jsonl")
    assert [d.external_id for d in listed.dialogues] == ["batch-1", "batch-2"]
    assert [d.external_id for d in lines.dialogues] == ["batch-1", "batch-2"]
    assert [turns_of(d) for d in listed.dialogues] == [turns_of(d) for d in lines.dialogues]
    assert listed.format == lines.format == "prefixed"


def test_json_list_string_without_prefix_names_record_and_index():
    data = json.dumps(["求助者：你好。", "我不知道。", "支持者：嗯。"], ensure_ascii=False).encode()
    assert refused(data, "e.json") == (
        "e.json, field '[1]': no speaker prefix at the start (a turn starts with '求助者：' or '支持者：'): '我不知道。'"
    )


def test_json_list_with_unknown_prefixes_explains_itself():
    data = json.dumps(["访客：我很累。", "陪伴者：你很累。"], ensure_ascii=False).encode()
    message = refused(data, "e.json")
    assert message.startswith(
        "e.json, field 'fmt': no supported format matches this file. Closest: prefixed — looks like a JSON list of "
        "strings with speaker prefixes '访客：'/'陪伴者：', which are not a known pair; choose 'prefixed' and name "
        "the client and counselor prefixes. Supported formats: "
    )
    options = ImportOptions(client_prefix="访客", counselor_prefix="陪伴者")
    assert parse_bytes(data, "e.json", options=options).dialogues[0].rounds == 1


# ---------------------------------------------------------------- CSV and Parquet turn tables


def test_csv_with_named_columns_and_known_speaker_values():
    result = parse_path(SPEAKERS / "utterances.csv", options=CSV_COLUMNS)
    assert result.format == "csv"
    s1, s2 = result.dialogues  # grouped by dialogue id, in order of first appearance; rows in file order
    assert (s1.external_id, s2.external_id) == ("s-1", "s-2")
    assert turns_of(s1) == [
        ("client", "I keep forgetting my pills."),
        ("counselor", "What gets in the way?"),
        ("client", "Mornings are busy."),
        ("counselor", "Mornings are rushed for you."),
    ]
    assert turns_of(s2) == [("client", "I want to exercise,\nbut I have no time."), ("counselor", "Time is the hard part.")]


def test_csv_with_default_columns_and_given_speaker_values():
    data = b"dialogue_id,speaker,text\n1,P,Hello.\n1,D,Hi there.\n"
    message = refused(data, "t.csv")
    assert "t.csv, field 'speaker': speaker values 'D', 'P' are not a known pair; name the client and counselor values" \
        in message
    result = parse_bytes(data, "t.csv", options=ImportOptions(client_prefix="P", counselor_prefix="D"))
    assert turns_of(result.dialogues[0]) == [("client", "Hello."), ("counselor", "Hi there.")]
    assert detect_format(data, "upload") == "csv"  # the header tells, without the extension


def test_csv_with_unknown_columns_explains_itself_and_bad_rows_are_named():
    message = refused((SPEAKERS / "utterances.csv").read_bytes(), "utterances.csv")
    assert message.startswith(
        "utterances.csv, field 'fmt': no supported format matches this file. Closest: csv — the header has columns "
        "session, who, utterance, minute, without 'dialogue_id', 'speaker', 'text'; name the dialogue id, speaker "
        "and text columns."
    )
    data = b"session,who,utterance\ns,Client,Hi.\ns,Therapist,Hello.\ns,Coach,Bye.\n"
    assert refused(data, "u.csv", options=CSV_COLUMNS) == (
        "u.csv, line 4, field 'who': unknown speaker 'Coach'; expected 'Client' (client), 'Therapist' (counselor) "
        "or 'system'"
    )


def test_parquet_with_the_csv_mapping(tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.read_csv(SPEAKERS / "utterances.csv", keep_default_na=False)
    path = tmp_path / "utterances.parquet"
    frame.to_parquet(path, index=False)
    result = parse_path(path, options=CSV_COLUMNS)
    assert result.format == "parquet"
    csv_result = parse_path(SPEAKERS / "utterances.csv", options=CSV_COLUMNS)
    assert [(d.external_id, turns_of(d)) for d in result.dialogues] == [
        (d.external_id, turns_of(d)) for d in csv_result.dialogues
    ]
    assert detect_format(path.read_bytes(), "upload") == "parquet"  # by its magic bytes
    integers = pandas.DataFrame({"dialogue_id": [7, 7], "speaker": ["client", "counselor"], "text": ["a", "b"]})
    integers.to_parquet(tmp_path / "ints.parquet", index=False)
    assert parse_path(tmp_path / "ints.parquet").dialogues[0].external_id == "7"
    missing = refused((tmp_path / "ints.parquet").read_bytes(), "ints.parquet", options=CSV_COLUMNS)
    assert missing.startswith("ints.parquet, field 'session': missing column (columns: dialogue_id, speaker, text)")
    assert refused(b"PAR1 not really", "broken.parquet").startswith("broken.parquet: not a readable Parquet file")


# ---------------------------------------------------------------- OpenAI chat JSONL


def test_openai_chat_jsonl():
    result = parse_path(FIXTURES / "openai_chat.jsonl")
    assert result.format == "openai"
    first, second = result.dialogues
    assert (first.external_id, first.source_dataset, first.rounds) == ("openai_chat-1", "openai", 2)
    assert turns_of(first)[0] == ("system", "You are a counselor who uses motivational interviewing.")
    assert turns_of(first)[-1] == ("counselor", "The baby is a big reason.\nWhat have you tried?")  # text parts
    # OpenAI chat may open with the assistant: kept, not a round
    assert (second.external_id, second.rounds, second.turns[0].speaker) == ("oa-2", 1, "counselor")


def test_openai_unknown_role_and_consecutive_turns():
    data = b'{"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}\n'
    assert refused(data, "chat.jsonl") == (
        "chat.jsonl, line 1, field 'messages[1].role': unknown role 'tool'; expected one of user, assistant, system, "
        "developer"
    )
    data = (b'{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},'
            b' {"role": "assistant", "content": "c"}]}\n')
    assert "line 1, field 'messages[1]': two client turns in a row (messages[0] and messages[1])" in refused(
        data, "chat.jsonl"
    )


# ---------------------------------------------------------------- turn order and rounds


def test_wrong_order_sharegpt_record_is_refused_naming_record_and_turn():
    path = BAD / "sharegpt_wrong_order.json"
    assert refused(path.read_bytes(), "sharegpt_wrong_order.json") == (
        "sharegpt_wrong_order.json, record 2, field 'conversations[0]': dialogue 'gpt-first' starts with a "
        "counselor turn; this format needs the client first (tick 'merge consecutive turns of one speaker' to keep "
        "it as an opening turn)"
    )
    records = json.loads(path.read_text(encoding="utf-8"))
    two_gpt = json.dumps([records[0], records[2]]).encode()
    assert refused(two_gpt, "two.json") == (
        "two.json, record 2, field 'conversations[2]': two counselor turns in a row (conversations[1] and "
        "conversations[2]) in dialogue 'two-gpt'; turns must alternate — tick 'merge consecutive turns of one "
        "speaker' to merge them"
    )


def test_merge_tick_merges_and_warns_per_place():
    result = parse_path(BAD / "sharegpt_wrong_order.json", options=ImportOptions(merge_consecutive=True))
    ok, gpt_first, two_gpt = result.dialogues
    assert (ok.rounds, gpt_first.rounds, two_gpt.rounds) == (1, 1, 2)
    assert turns_of(two_gpt)[1] == ("counselor", "Every night.\n\nWhat do you make of that?")
    where = BAD / "sharegpt_wrong_order.json"
    assert result.warnings == [
        f"{where}, record 2, field 'conversations[0]': dialogue 'gpt-first' starts with a counselor turn; kept as "
        "an opening turn (not a round)",
        f"{where}, record 3, field 'conversations[2]': merged two counselor turns in a row (conversations[1] and "
        "conversations[2]) of dialogue 'two-gpt'",
    ]


@pytest.mark.parametrize(
    ("filename", "data", "record", "field"),
    [
        ("p.json", b'[{"id": 1, "normalizedTag": "x", "messages": [{"role": "assistant", "content": "hi"},'
                   b' {"role": "user", "content": "yo"}, {"role": "assistant", "content": "ok"}]}]',
         "record 1", "messages[0]"),
        ("a.jsonl", b'{"instruction": "q", "output": "", "history": [["h1", "r1"]]}\n'
                    b'{"instruction": "q2", "output": "r2", "history": [["h1", ""]]}\n', "line 2", "instruction"),
        ("own.jsonl", b'{"external_id": "x", "turns": [{"speaker": "client", "text": "a"},'
                      b' {"speaker": "counselor", "text": "b"}, {"speaker": "counselor", "text": "c"}]}\n',
         "line 1", "turns[2]"),
    ],
)
def test_other_role_tagged_formats_check_order(filename, data, record, field):
    message = refused(data, filename)
    assert message.startswith(f"{filename}, {record}, field '{field}': ")
    assert "in a row" in message or "needs the client first" in message
    parse_bytes(data, filename, options=ImportOptions(merge_consecutive=True))  # accepted with the tick


def test_zero_round_dialogue_is_refused_naming_it():
    assert refused((BAD / "zero_rounds.jsonl").read_bytes(), "zero_rounds.jsonl") == (
        "zero_rounds.jsonl, line 2, field 'turns': dialogue 'z-2' has no round: no client turn is answered by a "
        "counselor turn (turns: counselor, client); it could never be generated or coded"
    )
    # the same check holds for plain transcripts and turn tables
    assert "dialogue 'late' has no round" in refused(b"T: Hello.\nC: Bye.\n", "late.txt")
    assert "dialogue 'd' has no round" in refused(
        b"dialogue_id,speaker,text\nd,counselor,Hi.\nd,client,Bye.\n", "t.csv"
    )


# ---------------------------------------------------------------- detection explains itself


def test_json_records_of_no_known_shape_name_the_closest_format():
    message = refused(b'[{"instruction": "q", "response": "r"}]', "x.json")
    assert message.startswith(
        "x.json, record 1, field 'fmt': no supported format matches this file. Closest: alpaca — the record has "
        "keys instruction, response; alpaca needs 'instruction' and 'output'. Supported formats: "
    )
    for fmt in FORMATS:
        assert f"; {fmt}: " in message or f"Supported formats: {fmt}: " in message


def test_text_starting_with_a_bracket_is_not_taken_for_json():
    data = b"[Session 1]\nC: I am tired.\nT: Tired.\n"
    assert refused(data, "session") .startswith("session, line 1, field 'speaker': text before the first speaker prefix")
    assert detect_format(b"C: I am tired.\nT: Tired.\n", "session") == "prefixed"
