"""A hostile-input corpus against every write endpoint, the filters, the import API and the import page.

Each case is sent through Django's test client (no browser). For every response: never ≥ 500; every
4xx under /api/ in the documented shape (``{"detail": str, "errors": {field: [str]}}``); a refused
request changes no row (the counts of every table a request could write, taken before and after).
Values that are valid text (3- and 4-byte characters, a formula-looking string) and wrong types a
field can take (a seed of -1, a number DRF turns into the name "1.5") may be accepted; each case's
writes are rolled back before the next. Refused characters are never accepted anywhere.

The corpus (printed with -s): for each write endpoint, every field of a valid body replaced by each
hostile string and each wrong type; bodies too large, nested too deep, not JSON, not an object; every
filter parameter with hostile and unknown values; path ids negative, huge and hostile; import files
(JSONL, CSV, JSON records) carrying NUL, lone surrogates, control characters and bidi overrides in
text, ids, topics and metadata, plus hostile form fields and file names, on the API and the page.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from tests.api.test_permissions import EXPECTED, fill

pytestmark = pytest.mark.django_db

# Strings no field may hold (refused everywhere) ...
REFUSED = {
    "lone surrogate": "a\ud800b",
    "low surrogate": "\udfff",
    "NUL": "a\x00b",
    "bell": "a\x07b",
    "escape sequence": "\x1b[31mred",
    "C1 control": "a\x85b",
    "DEL": "a\x7fb",
    "RTL override": "abc\u202egnp.exe",
    "RTL isolate": "\u2067abc\u2069",
}
# ... and strings that are valid text (a free-text field may keep them, exactly).
VALID_TEXT = {
    "3-byte": "代码咨询",
    "4-byte": "😀𠜎",
    "formula": "=cmd|' /C calc'!A0",
    "formula plus": "+1+1",
    "formula at": "@SUM(A1)",
}
WRONG_TYPES = {"list": [], "object": {"a": 1}, "float": 1.5, "bool": True, "null": None, "negative": -1,
               "huge int": 10**30, "huge negative": -(10**30), "numeric string": "1e999"}


def hostile_values() -> dict[str, object]:
    return {**REFUSED, **VALID_TEXT, **WRONG_TYPES}


# Per field of every write endpoint: a cheaper cut of the corpus (every kind once).
PER_FIELD = {name: value for name, value in hostile_values().items() if name in {
    "lone surrogate", "NUL", "escape sequence", "RTL override", "4-byte", "formula", "object", "huge int"}}


def row_counts() -> dict[str, int]:
    from django.contrib.auth import get_user_model

    from annotation import models as a
    from evaluation.models import ExportJob
    from inference.models import GenerationItem, GenerationRun, RegisteredModel

    tables = [get_user_model(), a.Study, a.Membership, a.Dialogue, a.Turn, a.ImportBatch, a.TranscriptSource,
              a.Transcript, a.CodingRound, a.Assignment, a.UtteranceCode, a.GlobalRating, a.ApiToken,
              RegisteredModel, GenerationRun, GenerationItem, ExportJob]
    from django.db import connection

    # One query for all of them: it runs twice per case.
    sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{model._meta.db_table}")' for model in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip((model.__name__ for model in tables), cursor.fetchone(), strict=True))


def assert_error_shape(response, label: str) -> None:
    assert response.get("Content-Type", "").startswith("application/json"), f"{label}: {response.get('Content-Type')}"
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], f"{label}: {body}"
    errors = body.get("errors")
    assert isinstance(errors, dict), f"{label}: {body}"
    assert all(isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
               for k, v in errors.items()), f"{label}: {body}"


def encode(body: object) -> str:
    # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800", as a hostile client would send it
    return json.dumps(body, ensure_ascii=True)


class Corpus:
    """Sends cases, checks each response, and counts them."""

    def __init__(self, client, label: str, *, exempt: tuple[str, ...] = (), form_pages: bool = False) -> None:
        self.client, self.label, self.exempt = client, label, exempt
        # The pages answer a refused form by showing it again (200, the errors on it); success redirects.
        self.form_pages = form_pages
        self.cases = 0
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.before: dict[str, int] | None = None

    def send(self, method: str, url: str, *, name: str, accepted_ok: bool = False, check=None, **kwargs) -> object:
        """One case in a savepoint: refused → no row changed; accepted only when ``accepted_ok``."""
        self.cases += 1
        label = f"{self.label}: {method} {url} [{name}]"
        with transaction.atomic():
            # Every case is rolled back, so the counts before a case are the counts the corpus started with.
            if self.before is None:
                self.before = row_counts()
            before = self.before
            response = getattr(self.client, method.lower())(url, **kwargs)
            refused = response.status_code >= 400 or (self.form_pages and response.status_code == 200)
            after = row_counts() if refused else before
            result = check(response) if check is not None and response.status_code < 400 else None
            transaction.set_rollback(True)
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k] and k not in self.exempt}
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code} {response.content[:300]!r}")
        elif refused:
            if url.startswith("/api/"):
                try:
                    assert_error_shape(response, label)
                except AssertionError as exc:
                    self.failures.append(str(exc))
            if changed:
                self.failures.append(f"{label}: refused with {response.status_code} but rows changed {changed}")
        elif not accepted_ok:
            self.failures.append(f"{label}: accepted ({response.status_code}) {response.content[:200]!r}")
        return result

    def done(self) -> None:
        print(f"{self.label}: {self.cases} cases, statuses {dict(sorted(self.statuses.items()))}")
        assert not self.failures, "\n".join(self.failures[:40])


@pytest.fixture
def no_throttle(monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "100000/min"})


BIG_BODY_PATHS = {"/api/tokens/", "/api/assignments/{id}/codes/", "/api/studies/{slug}/rounds/"}


def write_operations() -> list[tuple[str, str, object]]:
    return [(method, path, body) for (method, path), (body, _) in EXPECTED.items() if method != "GET"]


def persona_for(path: str) -> str:
    return "coder" if path.startswith("/api/assignments/") else "coordinator"


def _write_endpoints(matrix_ids, api) -> int:
    total = 0
    for method, path, body in write_operations():
        if "imports" in path:
            continue  # multipart: test_import_api_* below
        url = fill(path, matrix_ids)
        corpus = Corpus(api(persona_for(path)), f"{method} {path}")
        base = body(matrix_ids) if callable(body) else body
        fields = dict(base) if isinstance(base, dict) else {}
        # Whole-body cases: not JSON, not an object, nested too deep, 10 MB, an unknown field with NUL.
        raw_cases = {
            "not JSON": "{not json",
            "JSON array": encode([1, 2]),
            "JSON string with surrogate": encode("\ud800"),
            "nested 100 000 deep": "[" * 100_000 + "]" * 100_000,
            "nested 30 deep": encode({**fields, "extra": json.loads("[" * 30 + "]" * 30)}),
            "NUL in a key": encode({**fields, "bad\x00key": 1}),
            "surrogate in unknown field": encode({**fields, "note": "\ud800"}),
            "NaN": encode(fields).replace("{", '{"nan": NaN, ', 1) if fields else "NaN",
        }
        if path in BIG_BODY_PATHS:
            raw_cases["10 MB body"] = encode({**fields, "padding": "x" * (10 * 1024 * 1024)})
        for name, raw in raw_cases.items():
            # An operation that takes no body (a DELETE, "reopen") never reads it: it may succeed.
            corpus.send(method, url, name=name, data=raw, content_type="application/json", accepted_ok=base is None)
        for field in fields:
            for name, value in PER_FIELD.items():
                sent = {**fields, field: value}
                # A refused string is never accepted; valid text and wrong types may be, where the field
                # takes them (a name "代码", a seed -1, a number DRF turns into the text "1.5").
                corpus.send(method, url, name=f"{field}={name}", data=encode(sent), content_type="application/json",
                            accepted_ok=name not in REFUSED)
        corpus.done()
        total += corpus.cases
    return total


FILTERS = {
    "/api/queue/": ["status"],
    "/api/studies/{slug}/dialogues/": ["split"],
    "/api/studies/{slug}/rounds/{id}/assignments/": ["status", "coder"],
    "/api/studies/{slug}/runs/{id}/items/": ["status"],
    "/api/studies/{slug}/summaries/": ["round", "kind"],
    "/api/studies/{slug}/progress/": ["round"],
    "/api/studies/{slug}/aggregates/": ["round"],
    "/api/tokens/": ["limit", "offset"],
}
UNKNOWN_ENUMS = {"status": "bogus", "split": "dev", "kind": "both"}


def _filters(matrix_ids, api) -> int:
    from urllib.parse import quote

    total = 0
    for path, params in FILTERS.items():
        corpus = Corpus(api(persona_for(path) if path != "/api/queue/" else "coder"), f"GET {path}")
        url = fill(path, matrix_ids)
        for param in params:
            cases = {name: value for name, value in PER_FIELD.items() if isinstance(value, str)}
            cases |= {"huge int": str(10**30), "negative": "-1", "percent-encoded NUL": None,
                      "invalid UTF-8": None}
            for name, value in cases.items():
                if name == "percent-encoded NUL":
                    query = f"{param}=%00"
                elif name == "invalid UTF-8":
                    query = f"{param}=%ED%A0%80"  # a surrogate's UTF-8 bytes: Django decodes them as U+FFFD
                else:
                    query = f"{param}={quote(value.encode('utf-8', 'surrogatepass'))}"
                # A free filter (a username, a number) may answer 200; a lone surrogate cannot travel in a URL
                # (its UTF-8 bytes arrive as U+FFFD), so it may too.
                valid = param in ("coder", "limit", "offset", "round") and (name not in REFUSED or "surrogate" in name)
                corpus.send("GET", f"{url}?{query}", name=f"{param}={name}", accepted_ok=valid)
            if param in UNKNOWN_ENUMS:
                corpus.send("GET", f"{url}?{param}={UNKNOWN_ENUMS[param]}", name=f"{param} unknown")
            corpus.send("GET", f"{url}?{quote(chr(0))}{param}=x", name="NUL in the parameter name")
        corpus.done()
        total += corpus.cases
    return total


def test_unknown_filter_values_list_the_allowed_ones(study, api):
    response = api("coder").get("/api/queue/?status=bogus")
    assert response.status_code == 400
    assert response.json()["errors"]["status"] == [
        "Unknown status 'bogus'; use one of: pending, in_progress, submitted."]
    response = api("coordinator").get(f"/api/studies/{study.slug}/dialogues/?split=%00")
    assert response.status_code == 400
    assert "NUL character (U+0000)" in response.json()["errors"]["split"][0]


def _path_ids(matrix_ids, api) -> int:
    corpus = Corpus(api("coder"), "path ids")
    slug = matrix_ids["slug"]
    for pk in ("-1", str(2**63), str(10**30), "0", "%00", "%E2%80%AE", "1.5"):
        corpus.send("GET", f"/api/assignments/{pk}/", name=pk)
        corpus.send("POST", f"/api/assignments/{pk}/codes/", name=pk, data=encode({"utterance": 1, "code": "GI",
                                                                               "version": 0}),
                    content_type="application/json")
        corpus.send("DELETE", f"/api/studies/{slug}/members/{pk}/", name=f"member {pk}")
    coordinator = Corpus(api("coordinator"), "path ids (coordinator)")
    for pk in ("-1", str(2**63), str(10**30), "%00"):
        coordinator.send("GET", f"/api/studies/{slug}/rounds/{pk}/", name=pk)
        coordinator.send("DELETE", f"/api/studies/{slug}/members/{pk}/", name=pk)
        coordinator.send("GET", f"/api/studies/{slug}/summaries/?round={pk}", name=f"round={pk}")
    corpus.done()
    coordinator.done()
    return corpus.cases + coordinator.cases


# --- imports: the API and the page --------------------------------------------------------------------------

def jsonl(record: dict) -> bytes:
    return (encode(record) + "\n").encode()


GOOD_TURNS = [{"speaker": "client", "text": "我想戒烟。"}, {"speaker": "counselor", "text": "你想戒烟。"}]


def bad_files() -> dict[str, tuple[str, bytes, str]]:
    """name -> (file name, bytes, the field the refusal must name)."""
    files: dict[str, tuple[str, bytes, str]] = {}
    for name, value in REFUSED.items():
        files[f"jsonl text {name}"] = ("d.jsonl", jsonl({"external_id": "h1", "turns": [
            GOOD_TURNS[0], {"speaker": "counselor", "text": f"好的{value}"}]}), "turns[1].text")
        files[f"jsonl external_id {name}"] = ("d.jsonl", jsonl({"external_id": f"h{value}", "turns": GOOD_TURNS}),
                                              "external_id")
    files["jsonl topic RTL"] = ("d.jsonl", jsonl({"external_id": "h1", "topic": "a\u202eb", "turns": GOOD_TURNS}),
                                "topic")
    files["jsonl metadata NUL"] = ("d.jsonl", jsonl({"external_id": "h1", "metadata": {"note": "a\x00"},
                                                     "turns": GOOD_TURNS}), "metadata.note")
    files["jsonl metadata key surrogate"] = ("d.jsonl", jsonl({"external_id": "h1", "metadata": {"\ud800": 1},
                                                               "turns": GOOD_TURNS}), "metadata key")
    files["csv NUL in text"] = ("t.csv", b"dialogue_id,speaker,text\nd1,client,hi\nd1,counselor,a\x00b\n", "turns[1].text")
    files["csv bell in id"] = ("t.csv", b"dialogue_id,speaker,text\nd\x071,client,hi\nd\x071,counselor,ok\n",
                               "external_id")
    files["sharegpt surrogate"] = ("s.json", encode([{"conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "\udc00"}]}]).encode(), "conversations[1]")
    files["openai NUL in content"] = ("o.jsonl", jsonl({"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "\x00"}]}), "messages[1]")
    files["invalid UTF-8 (encoded surrogate)"] = ("d.jsonl", b'{"external_id": "\xed\xa0\x80"}\n', "line 1")
    return files


def clean_name(response_or_batch) -> None:
    from annotation.models import ImportBatch
    from annotation.parsers.characters import bad_character

    batch = response_or_batch
    if not isinstance(batch, ImportBatch):
        batch = ImportBatch.objects.get(pk=response_or_batch.json()["id"])
    assert bad_character(batch.filename, multiline=False) is None, repr(batch.filename)


def run_queued(batch_id: int):
    from annotation import actions
    from annotation.models import ImportBatch

    actions.run_import(batch_id)
    return ImportBatch.objects.get(pk=batch_id)


def _import_api(matrix_ids, api) -> int:
    from annotation.models import Dialogue, Turn

    client = api("coordinator")
    url = f"/api/studies/{matrix_ids['slug']}/imports/"
    corpus = Corpus(client, "import API", exempt=("ImportBatch",))  # the failed batch is the job's record
    dialogues, turns = Dialogue.objects.count(), Turn.objects.count()
    for name, (filename, data, field) in bad_files().items():
        def outcome(response, filename=filename, field=field, name=name):
            batch = run_queued(response.json()["id"])
            assert batch.status == "failed", (name, batch.status)
            message = batch.errors[0]
            assert message.startswith(filename) and field in message, (name, message)
            assert (Dialogue.objects.count(), Turn.objects.count()) == (dialogues, turns), name
            return message

        corpus.send("POST", url, name=name, accepted_ok=True, check=outcome,
                     data={"file": SimpleUploadedFile(filename, data), "split": "train"}, format="multipart")
    # (a lone surrogate cannot be encoded into a multipart body: the JSON cases above carry those)
    form_cases = {"split": "dev", "format": "xml", "client_prefix": "a\x00", "counselor_prefix": "\u202e",
                  "text_column": "\x07", "dialogue_column": "a\x1b", "speaker_column": "\x85"}
    for field, value in form_cases.items():
        corpus.send("POST", url, name=f"form {field}", format="multipart",
                    data={"file": SimpleUploadedFile("d.jsonl", jsonl({"external_id": "ok", "turns": GOOD_TURNS})),
                          field: value, **({"counselor_prefix": "B"} if field == "client_prefix" else {}),
                          **({"client_prefix": "A"} if field == "counselor_prefix" else {})})
    for name, value in REFUSED.items():
        if "surrogate" in name:
            continue  # a multipart header is bytes: a lone surrogate cannot be encoded into one
        # Django drops non-printable characters from uploaded file names: the name stored must be clean.
        corpus.send("POST", url, name=f"file name {name}", format="multipart", accepted_ok=True, check=clean_name,
                    data={"file": SimpleUploadedFile(f"d{value}.jsonl", jsonl({"external_id": "ok", "turns": GOOD_TURNS}))})
    corpus.done()
    assert (Dialogue.objects.count(), Turn.objects.count()) == (dialogues, turns)
    return corpus.cases


def test_hostile_corpus_against_the_api(matrix_ids, api, no_throttle, coordinator, coder):
    """One shared world for every API surface (building it is the expensive part); the browser's view of
    every GET endpoint (tests/api/test_browser_views_and_headers.py) runs on it too."""
    import time

    from tests.api.test_browser_views_and_headers import every_get_endpoint_opened_in_a_browser_answers_json

    counts, seconds = {}, {}
    for name, section in (("write endpoints", _write_endpoints), ("filters", _filters), ("path ids", _path_ids),
                          ("import API", _import_api)):
        started = time.monotonic()
        counts[name] = section(matrix_ids, api)
        seconds[name] = round(time.monotonic() - started, 1)
    print(f"hostile corpus: {counts}, {sum(counts.values())} cases in all; seconds {seconds}")
    opened = every_get_endpoint_opened_in_a_browser_answers_json(matrix_ids, coordinator, coder)
    print(f"GET endpoints opened as a browser: {opened} requests")
    assert counts["write endpoints"] >= 200 and counts["filters"] >= 100 and counts["import API"] >= 40


def test_import_api_reports_the_refusal_in_the_documented_shape(study, api):
    client = api("coordinator")
    response = client.post(f"/api/studies/{study.slug}/imports/", format="multipart",
                           data={"file": SimpleUploadedFile("d.jsonl", b"{}\n"), "client_prefix": "a\x00",
                                 "counselor_prefix": "b"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"client_prefix": ["Contains a NUL character (U+0000) at character 2, "
                                                           "which is not allowed."]}
    batch = run_queued(client.post(
        f"/api/studies/{study.slug}/imports/", format="multipart",
        data={"file": SimpleUploadedFile("d.jsonl", jsonl({"external_id": "x", "turns": [
            GOOD_TURNS[0], {"speaker": "counselor", "text": "好\ud800"}]}))}).json()["id"])
    assert batch.errors == ["d.jsonl, line 1, field 'turns[1].text': contains a lone surrogate (U+D800) at "
                            "character 2, which is not allowed"]


def test_import_page_refuses_hostile_files_and_fields(client, coordinator, study):
    from annotation.models import Dialogue, ImportBatch, Turn

    client.force_login(coordinator)
    url = f"/studies/{study.slug}/import/"
    corpus = Corpus(client, "import page", exempt=("ImportBatch",))
    for name, (filename, data, field) in bad_files().items():
        def outcome(response, filename=filename, field=field, name=name):
            assert response.status_code == 302, name
            batch = run_queued(ImportBatch.objects.filter(study=study).latest("id").pk)
            assert batch.status == "failed" and field in batch.errors[0], (name, batch.errors)
            page = client.get(response["Location"])
            assert page.status_code == 200 and filename in page.content.decode()
            assert Dialogue.objects.filter(study=study).count() == 0 and Turn.objects.count() == 0
            return batch

        corpus.send("POST", url, name=name, accepted_ok=True, check=outcome,
                    data={"file": SimpleUploadedFile(filename, data), "dialogue_column": "dialogue_id",
                          "speaker_column": "speaker", "text_column": "text"})
    for field, value in {"text_column": "\x00", "client_prefix": "\u202e", "dialogue_column": "a\x07",
                         "split": "dev"}.items():
        form = {"file": SimpleUploadedFile("d.jsonl", jsonl({"external_id": "ok", "turns": GOOD_TURNS})),
                "dialogue_column": "dialogue_id", "speaker_column": "speaker", "text_column": "text", field: value}
        if field == "client_prefix":
            form["counselor_prefix"] = "B"
        corpus.send("POST", url, name=f"form {field}", data=form)
    corpus.send("POST", url, name="file name bell", accepted_ok=True,
                check=lambda response: clean_name(ImportBatch.objects.filter(study=study).latest("id")), data={
        "file": SimpleUploadedFile("a\x07.jsonl", jsonl({"external_id": "ok", "turns": GOOD_TURNS})),
        "dialogue_column": "dialogue_id", "speaker_column": "speaker", "text_column": "text"})
    corpus.done()
    assert ImportBatch.objects.filter(study=study, status="done").count() == 0


def test_django_level_errors_under_api_answer_json(api, coder):
    """CSRF 403, 404, 405, 413 and a 500 from Django itself, all in the API's shape."""
    session = Client(enforce_csrf_checks=True)
    session.force_login(coder)
    checks = {
        "csrf on an unknown path": session.post("/api/nowhere/", data="{}", content_type="application/json"),
        "csrf on an endpoint": session.post("/api/assignments/1/undo/", data="{}",
                                            content_type="application/json"),
        "404": api("coder").get("/api/nowhere/"),
        "405": api("coder").put("/api/queue/", data={}),
        "413": api("coder").post("/api/assignments/1/undo/",
                                 data=encode({"pad": "x" * (11 * 1024 * 1024)}), content_type="application/json"),
    }
    expected = {"csrf on an unknown path": 403, "csrf on an endpoint": 403, "404": 404, "405": 405, "413": 413}
    for name, response in checks.items():
        assert response.status_code == expected[name], (name, response.status_code, response.content[:200])
        assert_error_shape(response, name)
    assert "CSRF" in checks["csrf on an unknown path"].json()["detail"]


def test_page_forms_refuse_hostile_text(client, admin_user, study):
    """The pages' forms run the same character check (annotation/forms.py: CheckedCharacters)."""
    client.force_login(admin_user)
    corpus = Corpus(client, "page forms", form_pages=True)
    forms = {
        "/studies/new/": {"name": "S", "slug": "s-new", "language": "zh", "change_goal": "quit", "description": ""},
        f"/studies/{study.slug}/members/": {"username": "coder", "role": "coder"},
        "/models/new/": {"name": "m-new", "backend": "openai", "base_model": "gpt-x",
                         "server_url": "http://127.0.0.1:9/v1"},
    }
    for url, base in forms.items():
        for field in base:
            for name, value in REFUSED.items():
                if "surrogate" in name:
                    continue  # a form body is UTF-8: a lone surrogate cannot be encoded into it
                corpus.send("POST", url, name=f"{field}={name}", data={**base, field: f"x{value}y"},
                            check=lambda response: response.content)
    corpus.done()
    assert "which is not allowed" in client.post("/studies/new/", {**forms["/studies/new/"], "name": "a\x07"}).content.decode()
    assert corpus.cases >= 60
