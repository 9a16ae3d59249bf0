"""Tests of the pure dialogue-file parsers (annotation.parsers): fixtures, bad input, real data sets."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from annotation.parsers import (
    FORMATS,
    ImportFormatError,
    ImportOptions,
    ParsedDialogue,
    ParsedTurn,
    annomi_annotator_labels,
    check_size,
    content_duplicate_groups,
    content_hash,
    detect_format,
    find_content_duplicates,
    parse_bytes,
    parse_path,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"
BAD = FIXTURES / "bad"
SHARED_DATA = Path(
    os.environ.get("MI_SHARED_DATA") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
)


def turns_of(dialogue: ParsedDialogue) -> list[tuple[str, str]]:
    return [(t.speaker, t.text) for t in dialogue.turns]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


MERGE = ImportOptions(merge_consecutive=True)


def raised(path: Path | str, fmt: str | None = None) -> ImportFormatError:
    with pytest.raises(ImportFormatError) as info:
        parse_path(path, fmt)
    return info.value


# ---------------------------------------------------------------- rounds, hashing, duplicates


def test_rounds_count_client_then_counselor_pairs_only():
    c, r, s = "client", "counselor", "system"
    dialogue = ParsedDialogue("x", [ParsedTurn(t, "t") for t in (s, r, c, r, c, s, r, c)])
    # leading counselor: no round; client-system-counselor: a round; trailing client: no round
    assert dialogue.rounds == 2
    assert ParsedDialogue("y", [ParsedTurn(r, "hello"), ParsedTurn(c, "hi")]).rounds == 0


def test_content_hash_is_sha256_of_speakers_and_whitespace_normalized_text():
    expected = hashlib.sha256("client\x1fa b\x1ecounselor\x1f好的\x1e".encode()).hexdigest()
    assert content_hash([ParsedTurn("client", " a \r\n\u3000b"), ParsedTurn("counselor", "好的")]) == expected
    assert (
        ParsedDialogue("x", [ParsedTurn("client", "a b"), ParsedTurn("counselor", "好的")]).content_hash
        == expected
    )
    assert content_hash([ParsedTurn("counselor", "a b"), ParsedTurn("counselor", "好的")]) != expected


def test_content_duplicates_point_at_the_first_occurrence():
    def dialogue(external_id: str, text: str) -> ParsedDialogue:
        return ParsedDialogue(external_id, [ParsedTurn("client", text), ParsedTurn("counselor", "ok")])

    dialogues = [dialogue("a", "one"), dialogue("b", "two"), dialogue("c", "one"), dialogue("d", "one")]
    assert find_content_duplicates(dialogues) == {"c": "a", "d": "a"}
    assert content_duplicate_groups(dialogues) == [["a", "c", "d"]]


# ---------------------------------------------------------------- each format from fixtures


def test_cpsycound_folder_merges_paragraphs_and_runs_and_flags_duplicates():
    result = parse_path(FIXTURES / "cpsycound")
    assert result.format == "cpsycound"
    assert [d.external_id for d in result.dialogues] == ["session_1", "session_2", "session_10"]  # natural order
    session_1 = result.dialogues[0]
    assert turns_of(session_1) == [
        ("client", "老师您好，我最近总是睡不着。"),
        ("counselor", "你好，谢谢你愿意来谈。能说说失眠大概从什么时候开始的吗？"),
        (
            "client",
            "大概一个月前，换了新工作以后。\n每天晚上脑子里都在想工作的事。\n\n我试过听音乐，但没有用。\n\n而且白天也很累。",
        ),
        (
            "counselor",
            "听起来新工作给你带来了不少压力。\n\n（一段时间后）\n\n我们可以一起试试睡前的放松练习，好吗？",
        ),
        ("client", "好的，我愿意试试。"),
    ]
    assert session_1.rounds == 2  # the trailing client turn is not a round
    assert session_1.source_dataset == "CPsyCounD" and session_1.topic is None and session_1.split is None
    # session_10 is session_2 saved with CRLF and trailing blank lines
    assert result.dialogues[2].content_hash == result.dialogues[1].content_hash
    assert find_content_duplicates(result.dialogues) == {"session_10": "session_2"}
    assert result.warnings == [
        f"{FIXTURES / 'cpsycound' / 'README.md'}: skipped (not .txt, .json, .jsonl, .csv, .parquet)",
        "dialogue 'session_10' has the same content as 'session_2'",
    ]


def test_cpsycound_single_file_tolerates_bom_and_crlf():
    result = parse_path(FIXTURES / "cpsycound" / "session_1.txt")
    assert (result.format, len(result.dialogues)) == ("cpsycound", 1)
    assert result.dialogues[0].turns[0] == ParsedTurn("client", "老师您好，我最近总是睡不着。")


def test_jsonl_own_format():
    # en-001 has two client turns in a row: merged only because the coordinator ticked "merge"
    result = parse_path(FIXTURES / "dialogues.jsonl", options=MERGE)
    assert result.format == "jsonl"
    en, zh, en2 = result.dialogues
    assert (en.external_id, en.topic, en.split, en.source_dataset, en.metadata) == (
        "en-001",
        "smoking cessation",
        "test",
        "fixture",
        {"quality": "high"},
    )
    assert turns_of(en) == [
        ("system", "You are a counselor who uses motivational interviewing."),
        ("client", "I've been thinking about quitting smoking."),
        ("counselor", "You're considering a change."),
        ("client", "Yes, but it's hard.\n\nMy friends all smoke."),
        ("counselor", "Quitting feels hard when the people around you smoke."),
        ("client", "Exactly."),
    ]
    assert en.rounds == 2
    assert (zh.external_id, zh.topic, zh.split, zh.source_dataset, zh.rounds) == ("zh-001", None, None, "", 1)
    assert (en2.split, en2.rounds) == ("train", 1)
    assert result.warnings == [
        f"{FIXTURES / 'dialogues.jsonl'}, line 1, field 'turns[4]': merged two client turns in a row "
        "(turns[3] and turns[4]) of dialogue 'en-001'",
        f"{FIXTURES / 'dialogues.jsonl'}, line 4: ignored unknown key(s) notes",
    ]


def test_psydt():
    result = parse_path(FIXTURES / "psydt.json")
    assert result.format == "psydt"
    first, second = result.dialogues
    assert (first.external_id, first.topic, first.source_dataset, first.rounds) == (
        "101",
        "职场",
        "PsyDTCorpus",
        1,
    )
    assert turns_of(first) == [
        ("system", "你是一位心理咨询师。"),
        ("client", "我总是拖延，工作完不成。"),
        ("counselor", "拖延让你很困扰。"),
        ("client", "是的。"),
    ]
    assert (second.external_id, second.topic, second.rounds) == ("102", "家庭", 2)


def test_sharegpt_with_top_level_system():
    result = parse_path(FIXTURES / "sharegpt.json")
    assert result.format == "sharegpt"
    first, second = result.dialogues
    assert first.external_id == "sharegpt-1"  # no "id": file stem and record number
    assert turns_of(first) == [
        ("system", "You are a counselor who uses motivational interviewing."),
        ("client", "I want to drink less."),
        ("counselor", "What makes you want to cut down?"),
        ("client", "My health."),
        ("counselor", "Your health matters to you."),
    ]
    assert (first.rounds, second.external_id, second.rounds) == (2, "sg-2", 1)


def test_alpaca_with_history_and_input():
    result = parse_path(FIXTURES / "alpaca.jsonl")
    assert result.format == "alpaca"
    first, second = result.dialogues
    assert turns_of(first) == [
        ("client", "你好。"),
        ("counselor", "你好，有什么想聊的吗？"),
        ("client", "我最近总是失眠。"),
        ("counselor", "失眠一定让你很疲惫。"),
    ]
    assert (first.external_id, first.rounds) == ("alpaca-1", 2)
    assert turns_of(second) == [
        ("system", "You are an MI counselor."),
        ("client", "I keep skipping my medication.\nIt makes me feel tired."),
        ("counselor", "So the tiredness makes it hard to keep taking it."),
    ]


def test_alpaca_as_json_list_gives_the_same_dialogues():
    lines = (FIXTURES / "alpaca.jsonl").read_text(encoding="utf-8").split("\n")
    as_list = ("[" + ",".join(line for line in lines if line) + "]").encode()
    listed = parse_bytes(as_list, "alpaca.json")
    assert [turns_of(d) for d in listed.dialogues] == [
        turns_of(d) for d in parse_path(FIXTURES / "alpaca.jsonl").dialogues
    ]
    assert [d.external_id for d in listed.dialogues] == ["alpaca-1", "alpaca-2"]


def test_annomi_simple_orders_by_utterance_id_and_merges():
    result = parse_path(FIXTURES / "annomi_simple.csv")
    assert result.format == "annomi"
    first, third = result.dialogues
    assert (first.external_id, first.topic, first.rounds) == ("annomi_1", "weight loss", 1)
    assert first.turns[-1] == ParsedTurn("client", "I tried.\nIt didn't work.")  # quoted newline kept
    assert (third.external_id, third.topic) == ("annomi_3", "smoking cessation")  # trailing space stripped
    assert turns_of(third) == [
        ("counselor", "Do you smoke?"),
        ("client", "I smoke, yes.\n\nBut I want to stop."),
        ("counselor", "You want to stop."),
    ]
    assert third.metadata == {
        "transcript_id": 3,
        "mi_quality": "high",
        "video_title": 'Video "C"',
        "video_url": "https://example.org/c",
    }


def test_annomi_full_takes_turns_once_from_lowest_annotator():
    result = parse_path(FIXTURES / "annomi_full.csv")
    five, six = result.dialogues
    assert turns_of(five) == [
        ("counselor", "How are you feeling about your drinking?"),
        ("client", "I drink too much."),
        ("counselor", "You're worried about it.\n\nMany people cut down with a plan."),
    ]
    assert (five.metadata["annotator_ids"], six.metadata["annotator_ids"]) == ([0, 2], [4])
    assert (five.rounds, six.rounds) == (1, 1)
    assert (
        len(result.warnings) == 1
        and "1 transcript(s) were labelled by several annotators" in result.warnings[0]
    )


def test_annomi_annotator_labels():
    labels = annomi_annotator_labels(FIXTURES / "annomi_full.csv")
    assert [(x.transcript_id, x.external_id, x.annotator_id) for x in labels] == [
        (5, "annomi_5", 0),
        (5, "annomi_5", 2),
        (6, "annomi_6", 4),
    ]
    ann0, ann2, _ = labels
    assert [(u.utterance_id, u.turn_index, u.main_therapist_behaviour) for u in ann0.utterances] == [
        (0, 0, "question"),
        (2, 2, "reflection"),
        (3, 2, "therapist_input"),
    ]
    assert ann0.utterances[0].question_subtype == "open"
    assert ann0.utterances[0].reflection_subtype is None  # "n/a" becomes None
    assert [u.reflection_subtype for u in ann0.utterances] == [None, "simple", None]
    assert [u.reflection_subtype for u in ann2.utterances] == [None, "complex", None]
    assert ann2.utterances[2].therapist_input_subtype == "information"
    from_bytes = annomi_annotator_labels((FIXTURES / "annomi_full.csv").read_bytes(), "upload.csv")
    assert from_bytes == labels


def test_annomi_labels_need_the_full_file():
    with pytest.raises(ImportFormatError) as info:
        annomi_annotator_labels(FIXTURES / "annomi_simple.csv")
    assert (
        str(info.value)
        == f"{FIXTURES / 'annomi_simple.csv'}, line 1, field 'annotator_id': missing column in the header"
    )


# ---------------------------------------------------------------- detection and override


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("psydt.json", "psydt"),
        ("sharegpt.json", "sharegpt"),
        ("alpaca.jsonl", "alpaca"),
        ("dialogues.jsonl", "jsonl"),
        ("annomi_simple.csv", "annomi"),
        ("cpsycound/session_2.txt", "cpsycound"),
    ],
)
def test_format_detected_from_content_without_extension(name, expected):
    data = (FIXTURES / name).read_bytes()
    assert detect_format(data, "upload") == expected
    assert parse_bytes(data, "upload", options=MERGE).format == expected


def test_jsonl_under_json_extension_is_read_as_lines():
    result = parse_bytes((FIXTURES / "dialogues.jsonl").read_bytes(), "dialogues.json", options=MERGE)
    assert [d.external_id for d in result.dialogues] == ["en-001", "zh-001", "en-002"]


def test_explicit_format_overrides_detection():
    assert parse_path(FIXTURES / "sharegpt.json", fmt="sharegpt").format == "sharegpt"
    error = raised(FIXTURES / "psydt.json", fmt="sharegpt")
    assert str(error) == f"{FIXTURES / 'psydt.json'}, record 1, field 'conversations': missing"


def test_unknown_explicit_format():
    error = raised(FIXTURES / "psydt.json", fmt="xml")
    assert (error.file, error.record, error.field) == (str(FIXTURES / "psydt.json"), None, "fmt")
    assert (
        "unknown format 'xml'; expected one of jsonl, cpsycound, psydt, sharegpt, alpaca, annomi, openai, "
        "prefixed, csv, parquet" in str(error)
    )
    assert FORMATS == (
        "jsonl", "cpsycound", "psydt", "sharegpt", "alpaca", "annomi", "openai", "prefixed", "csv", "parquet"
    )


# ---------------------------------------------------------------- zip uploads


def test_zip_upload_of_cpsycound_files():
    folder = FIXTURES / "cpsycound"
    data = zip_bytes(
        {
            "Data/session_10.txt": (folder / "session_10.txt").read_bytes(),
            "Data/session_2.txt": (folder / "session_2.txt").read_bytes(),
            "Data/session_1.txt": (folder / "session_1.txt").read_bytes(),
            "__MACOSX/Data/._session_1.txt": b"\x00\x05junk",
            "Data/.DS_Store": b"\x00junk",
            "Data/notes.docx": b"not a dialogue",
        }
    )
    result = parse_bytes(data, "upload.zip")
    assert result.format == "cpsycound"
    assert [d.external_id for d in result.dialogues] == ["session_1", "session_2", "session_10"]
    assert sum(d.rounds for d in result.dialogues) == 6
    assert result.warnings == [
        "upload.zip/Data/notes.docx: skipped (not .txt, .json, .jsonl, .csv, .parquet)",
        "dialogue 'session_10' has the same content as 'session_2'",
    ]
    assert result.dialogues[0].origin_file == "upload.zip/Data/session_1.txt"


def test_zip_duplicate_external_id_across_folders():
    session_2 = (FIXTURES / "cpsycound" / "session_2.txt").read_bytes()
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(zip_bytes({"a/session_2.txt": session_2, "b/session_2.txt": session_2}), "upload.zip")
    assert str(info.value) == (
        "upload.zip/b/session_2.txt, field 'external_id': duplicate external id 'session_2' "
        "(first at upload.zip/a/session_2.txt)"
    )


def test_zip_with_mixed_formats():
    data = zip_bytes(
        {
            "dialogue_2.txt": (FIXTURES / "cpsycound" / "session_2.txt").read_bytes(),
            "psydt.json": (FIXTURES / "psydt.json").read_bytes(),
        }
    )
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, "upload.zip")
    assert str(info.value) == (
        "upload.zip/psydt.json, field 'fmt': mixed formats: this file is psydt, "
        "upload.zip/dialogue_2.txt is cpsycound; "
        "import one format at a time"
    )


def test_zip_limits_and_damage():
    data = zip_bytes({"session_2.txt": (FIXTURES / "cpsycound" / "session_2.txt").read_bytes()})
    with pytest.raises(
        ImportFormatError, match=r"^upload\.zip: archive unpacks to 211 bytes, over the limit of 100$"
    ):
        parse_bytes(data, "upload.zip", max_unpacked_bytes=100)
    with pytest.raises(ImportFormatError, match=r"^broken\.zip: not a valid zip archive$"):
        parse_bytes(b"PK\x03\x04 cut off", "broken.zip")
    with pytest.raises(
        ImportFormatError, match=r"^empty\.zip: no dialogue files \(\.txt, \.json, \.jsonl, \.csv, \.parquet\) found$"
    ):
        parse_bytes(zip_bytes({}), "empty.zip")


# ---------------------------------------------------------------- bad input: one test per case


def test_not_utf8_names_file_and_line():
    error = raised(BAD / "not_utf8.txt")
    assert (error.file, error.record, error.field) == (str(BAD / "not_utf8.txt"), "line 3", None)
    assert (
        str(error)
        == f"{BAD / 'not_utf8.txt'}, line 3: not valid UTF-8 (byte 0xd0 at offset 23); save the file as UTF-8"
    )


def test_truncated_json_names_line_and_column():
    error = raised(BAD / "truncated.json")
    assert str(error) == (
        f"{BAD / 'truncated.json'}, line 12, column 16: "
        "invalid or truncated JSON: Unterminated string starting at"
    )


def test_invalid_json_line_in_jsonl_upload():
    data = b'{"external_id": "a", "turns": []}\n{"external_id": "b", "turns": [\n'
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, "upload.jsonl")
    assert (info.value.file, info.value.record) == ("upload.jsonl", "line 2")
    assert str(info.value).startswith("upload.jsonl, line 2: invalid or truncated JSON: Expecting value")


def test_unknown_role_names_record_and_field():
    error = raised(BAD / "unknown_role.json")
    assert str(error) == (
        f"{BAD / 'unknown_role.json'}, record 2, field 'conversations[1].from': unknown role 'doctor'; "
        "expected one of human, user, gpt, assistant, system"
    )


def test_unknown_speaker_in_own_format():
    data = (
        b'{"external_id": "a", "turns": '
        b'[{"speaker": "client", "text": "hi"}, {"speaker": "coach", "text": "yo"}]}\n'
    )
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, "upload.jsonl")
    assert str(info.value) == (
        "upload.jsonl, line 1, field 'turns[1].speaker': "
        "unknown speaker 'coach'; expected one of client, counselor, system"
    )


def test_unknown_interlocutor_in_annomi_csv():
    error = raised(BAD / "unknown_interlocutor.csv")
    assert str(error) == (
        f"{BAD / 'unknown_interlocutor.csv'}, line 3, field 'interlocutor': "
        "unknown role 'coach'; expected therapist or client"
    )


def test_empty_dialogue():
    error = raised(BAD / "empty_dialogue.jsonl")
    assert (
        str(error) == f"{BAD / 'empty_dialogue.jsonl'}, line 2, field 'turns': "
        "dialogue 'e-2' is empty (no turn with text)"
    )


def test_empty_cpsycound_file():
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(b"\xef\xbb\xbf\r\n\r\n", "case_7.txt")
    assert str(info.value) == "case_7.txt, field 'turns': dialogue 'case_7' is empty (no turn with text)"


def test_dialogue_without_counselor_turn():
    error = raised(BAD / "no_counselor.jsonl")
    assert (
        str(error)
        == f"{BAD / 'no_counselor.jsonl'}, line 1, field 'turns': dialogue 'n-1' has no counselor turn"
    )
    error = raised(BAD / "no_counselor.txt")
    assert (
        str(error)
        == f"{BAD / 'no_counselor.txt'}, field 'turns': dialogue 'no_counselor' has no counselor turn"
    )


def test_duplicate_external_id_within_a_file():
    error = raised(BAD / "duplicate_id.jsonl")
    assert (error.record, error.field) == ("line 3", "external_id")
    assert str(error) == (
        f"{BAD / 'duplicate_id.jsonl'}, line 3, field 'external_id': duplicate external id 'd-1' "
        f"(first at {BAD / 'duplicate_id.jsonl'}, line 1)"
    )


def test_unknown_format_lists_the_formats_and_why_the_closest_did_not_match():
    error = raised(BAD / "unknown_format.dat")
    assert (error.record, error.field) == (None, "fmt")
    assert str(error).startswith(
        f"{BAD / 'unknown_format.dat'}, field 'fmt': no supported format matches this file. "
        "Closest: prefixed — text, but no turn starts with a speaker prefix such as 'Client:' or '来访者：'. "
        "Supported formats: jsonl: "
    )
    for fmt in FORMATS:
        assert f"{fmt}: " in str(error)


def test_text_before_first_speaker_prefix():
    error = raised(BAD / "text_before_prefix.txt")
    assert str(error) == (
        f"{BAD / 'text_before_prefix.txt'}, line 1, field 'speaker': "
        "text before the first speaker prefix (a turn starts with '来访者：' or '心理咨询师：')"
    )


def test_wrong_field_types():
    data = b'[{"id": 1, "normalizedTag": 5, "messages": []}]'
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, "psydt.json")
    assert str(info.value) == "psydt.json, record 1, field 'normalizedTag': must be a string, got int"
    data = b'{"external_id": "a", "split": "dev", "turns": []}\n'
    with pytest.raises(ImportFormatError) as info:
        parse_bytes(data, "own.jsonl")
    assert (
        str(info.value)
        == "own.jsonl, line 1, field 'split': unknown split 'dev'; expected one of train, test, unused"
    )


def test_oversize():
    check_size(100, 100, "ok.zip")  # at the limit is fine
    with pytest.raises(ImportFormatError) as info:
        check_size(2_000_001, 2_000_000, "big.zip")
    assert str(info.value) == "big.zip: file is 2,000,001 bytes, over the limit of 2,000,000 bytes"


def test_missing_path():
    error = raised(FIXTURES / "nowhere.jsonl")
    assert str(error) == f"{FIXTURES / 'nowhere.jsonl'}: no such file or folder"


def test_error_survives_pickling_and_formats_int_records():
    error = ImportFormatError("bad", "f.json", 3, "messages[0].role")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.file, copy.record, copy.field) == (
        "bad",
        "f.json",
        "record 3",
        "messages[0].role",
    )
    assert str(copy) == "f.json, record 3, field 'messages[0].role': bad"
    assert str(ImportFormatError("plain")) == "plain"


# ---------------------------------------------------------------- real data sets (skipped when absent)

needs_cpsycound = pytest.mark.skipif(
    not (SHARED_DATA / "CPsyCounD" / "Data").is_dir(), reason=f"CPsyCounD not found under {SHARED_DATA}"
)
needs_annomi = pytest.mark.skipif(
    not (SHARED_DATA / "AnnoMI" / "AnnoMI-full.csv").is_file(), reason=f"AnnoMI not found under {SHARED_DATA}"
)
needs_psydt = pytest.mark.skipif(
    not (SHARED_DATA / "PsyDTCorpus").is_dir(), reason=f"PsyDTCorpus not found under {SHARED_DATA}"
)


@needs_cpsycound
def test_real_cpsycound_folder():
    result = parse_path(SHARED_DATA / "CPsyCounD" / "Data")
    dialogues = result.dialogues
    assert (result.format, len(dialogues), sum(d.rounds for d in dialogues)) == ("cpsycound", 3134, 24590)
    # The four files share one content (two byte-identical pairs, one pair saved with CRLF):
    # three repeats point at the first, so four files are flagged as content duplicates.
    assert find_content_duplicates(dialogues) == {
        "case_1921": "case_1762",
        "case_2274": "case_1762",
        "case_2301": "case_1762",
    }
    assert content_duplicate_groups(dialogues) == [["case_1762", "case_1921", "case_2274", "case_2301"]]
    # README counts 740 dialogues ending on a client turn; case_983 and case_1408 end on a bare
    # "来访者：" that the parser drops (with a warning), hence 738.
    assert sum(d.turns[-1].speaker == "client" for d in dialogues) == 738
    assert all(a.speaker != b.speaker for d in dialogues for a, b in zip(d.turns, d.turns[1:], strict=False))
    assert sum(1 for w in result.warnings if "dropped 1 empty turn(s)" in w) == 2


@needs_annomi
def test_real_annomi_simple_and_full():
    simple = parse_path(SHARED_DATA / "AnnoMI" / "AnnoMI-simple.csv")
    full = parse_path(SHARED_DATA / "AnnoMI" / "AnnoMI-full.csv")
    assert (len(simple.dialogues), len(full.dialogues)) == (133, 133)
    assert sum(len(d.metadata["annotator_ids"]) > 1 for d in full.dialogues) == 7
    # the full file's dialogues (lowest annotator) are the simple file's dialogues
    assert [d.content_hash for d in full.dialogues] == [d.content_hash for d in simple.dialogues]
    assert sum(d.metadata["mi_quality"] == "high" for d in simple.dialogues) == 110


@needs_annomi
def test_real_annomi_labels_match_pandas():
    pandas = pytest.importorskip("pandas")
    path = SHARED_DATA / "AnnoMI" / "AnnoMI-full.csv"
    labels = annomi_annotator_labels(path)
    frame = pandas.read_csv(path, keep_default_na=False)
    therapist = frame[frame.interlocutor == "therapist"]
    assert len(labels) == frame.groupby(["transcript_id", "annotator_id"]).ngroups
    assert sum(len(x.utterances) for x in labels) == len(therapist) == 6826
    multi = {
        x.transcript_id
        for x in labels
        if x.annotator_id != min(y.annotator_id for y in labels if y.transcript_id == x.transcript_id)
    }
    assert sorted(multi) == [7, 27, 55, 56, 66, 109, 130]
    complex_count = sum(u.reflection_subtype == "complex" for x in labels for u in x.utterances)
    assert complex_count == (therapist.reflection_subtype == "complex").sum() == 951


@needs_psydt
def test_real_psydt_example_record():
    result = parse_path(SHARED_DATA / "PsyDTCorpus" / "example_record_from_SoulChat2.0_README.json")
    assert result.format == "psydt"
    (dialogue,) = result.dialogues
    assert (dialogue.external_id, dialogue.topic, dialogue.source_dataset) == ("0", "婚恋", "PsyDTCorpus")
    assert (len(dialogue.turns), dialogue.rounds) == (31, 15)
    assert dialogue.turns[0].speaker == "system" and dialogue.turns[0].text.startswith(
        "你是一位精通理情行为疗法"
    )
    assert dialogue.turns[1] == ParsedTurn(
        "client", "晚上好，我最近心里有些不太舒服，和男朋友的事情让我很苦恼。"
    )
