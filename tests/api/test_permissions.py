"""The permission matrix: every operation in the OpenAPI schema × every persona gets the expected status.

The operations come from the generated schema, so a new endpoint without a row in ``EXPECTED`` fails
``test_every_operation_has_an_expectation``; a row for an endpoint that is gone fails too. Each request
runs in its own rolled-back transaction, so a persona's write never changes what the next one sees.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from tests.api.conftest import ID_FOR_SEGMENT, PERSONAS
from tests.conftest import FIXTURES, PASSWORD

pytestmark = pytest.mark.django_db

# Status per persona, in the order of PERSONAS: admin, coordinator, coder, coder2, outsider, anonymous.
def row(admin, coordinator, coder, coder2, outsider, anonymous=401) -> dict[str, int]:
    return dict(zip(PERSONAS, (admin, coordinator, coder, coder2, outsider, anonymous), strict=True))


ANY_USER = row(200, 200, 200, 200, 200)
MEMBERS = row(200, 200, 200, 200, 404)
COORDINATORS = row(200, 200, 403, 403, 404)
OWN_ASSIGNMENT = row(404, 404, 200, 404, 404)
REGISTRY = row(200, 200, 403, 403, 403)


def coordinators(status: int) -> dict[str, int]:
    return row(status, status, 403, 403, 404)


def own_assignment(status: int) -> dict[str, int]:
    return row(404, 404, status, 404, 404)


def upload() -> dict:
    data = (FIXTURES / "import" / "dialogues.jsonl").read_bytes()
    return {"file": SimpleUploadedFile("dialogues.jsonl", data, content_type="application/x-ndjson"), "split": "train"}


# (method, schema path) -> (request body or a callable making one, expected status per persona)
EXPECTED: dict[tuple[str, str], tuple[object, dict[str, int]]] = {
    ("GET", "/api/me/"): (None, ANY_USER),
    ("GET", "/api/tokens/"): (None, ANY_USER),
    # Minting authenticates with the credentials in the body, whoever calls (anonymous included).
    ("POST", "/api/tokens/"): ({"username": "coder", "password": PASSWORD, "name": "m"}, row(201, 201, 201, 201, 201, 201)),
    ("DELETE", "/api/tokens/{id}/"): (None, row(404, 404, 204, 404, 404)),
    ("GET", "/api/studies/"): (None, ANY_USER),
    ("POST", "/api/studies/"): ({"name": "New study", "change_goal": "exercise"}, row(201, 201, 403, 403, 403)),
    ("GET", "/api/studies/{slug}/"): (None, MEMBERS),
    ("GET", "/api/studies/{slug}/members/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/members/"): ({"username": "outsider", "role": "coder"}, coordinators(201)),
    ("DELETE", "/api/studies/{slug}/members/{username}/"): (None, coordinators(204)),
    ("GET", "/api/studies/{slug}/dialogues/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/dialogues/{id}/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/imports/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/imports/"): (upload, coordinators(202)),
    ("GET", "/api/studies/{slug}/imports/{id}/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/split/"): ({"mode": "random", "n_test": 2, "seed": 1}, coordinators(200)),
    ("GET", "/api/studies/{slug}/sources/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/sources/reference/"): (None, coordinators(200)),
    ("GET", "/api/studies/{slug}/rounds/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/rounds/"): (
        lambda ids: {"name": "Round 2", "sources": [ids["reference"]], "coders": ["coder"], "overlap": 0},
        coordinators(201),
    ),
    ("GET", "/api/studies/{slug}/rounds/{id}/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/rounds/{id}/assignments/"): (None, COORDINATORS),
    # The assignment is not submitted: a coordinator reaches the action and is told so (400).
    ("POST", "/api/studies/{slug}/assignments/{id}/reopen/"): (None, coordinators(400)),
    ("GET", "/api/queue/"): (None, ANY_USER),
    ("GET", "/api/assignments/{id}/"): (None, OWN_ASSIGNMENT),
    ("POST", "/api/assignments/{id}/codes/"): (
        lambda ids: {"utterance": ids["utterance"], "code": "GI", "version": 0}, own_assignment(200)),
    ("POST", "/api/assignments/{id}/globals/"): (
        {"scale": "CULTIVATING_CHANGE_TALK", "value": 3, "version": 0}, own_assignment(200)),
    ("POST", "/api/assignments/{id}/undo/"): ({"version": 0}, own_assignment(400)),  # nothing to undo yet
    ("POST", "/api/assignments/{id}/submit/"): ({"version": 0}, own_assignment(400)),  # nothing coded yet
    ("GET", "/api/models/"): (None, REGISTRY),
    ("POST", "/api/models/"): (
        {"name": "served-baseline", "backend": "openai", "base_model": "gpt-x", "server_url": "http://127.0.0.1:9/v1"},
        row(201, 201, 403, 403, 403),
    ),
    ("GET", "/api/models/{id}/"): (None, REGISTRY),
    ("GET", "/api/studies/{slug}/runs/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/machine-coders/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/machine-coders/"): (
        lambda ids: {"name": "api coder", "kind": "llm", "model": ids["served_model"]}, coordinators(201)),
    ("GET", "/api/studies/{slug}/machine-coders/{id}/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/machine-coders/{id}/runs/"): (lambda ids: {"round": ids["round"]}, coordinators(201)),
    ("POST", "/api/studies/{slug}/runs/"): (lambda ids: {"model": ids["served_model"]}, coordinators(201)),
    ("GET", "/api/studies/{slug}/runs/{id}/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/runs/{id}/cancel/"): (None, coordinators(200)),
    ("POST", "/api/studies/{slug}/runs/{id}/resume/"): ({}, coordinators(200)),
    ("GET", "/api/studies/{slug}/runs/{id}/items/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/runs/{id}/items/{item_id}/retry/"): (None, coordinators(200)),
    ("POST", "/api/studies/{slug}/runs/{id}/metrics/"): (None, coordinators(202)),
    ("GET", "/api/studies/{slug}/progress/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/summaries/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/aggregates/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/reliability/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/metrics/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/exports/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/exports/"): ({"kind": "summaries", "format": "csv"}, coordinators(202)),
    ("GET", "/api/studies/{slug}/exports/{id}/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/exports/{id}/download/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/gold-sets/"): (None, COORDINATORS),
    ("POST", "/api/studies/{slug}/gold-sets/"): ({"name": "Gold 2"}, coordinators(201)),
    # The coder's assignment is not submitted: a coordinator reaches the action and is told so (400).
    ("POST", "/api/studies/{slug}/gold-sets/{id}/golds/"): (
        lambda ids: {"assignment": ids["assignment"]}, coordinators(400)),
    ("GET", "/api/studies/{slug}/calibration/results/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/proficiency/"): (None, COORDINATORS),
    ("GET", "/api/studies/{slug}/drift/"): (None, COORDINATORS),
}

def schema_operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


def fill(path: str, ids: dict[str, object]) -> str:
    parts = path.strip("/").split("/")
    out = []
    for i, part in enumerate(parts):
        if part == "{id}":
            out.append(str(ids[ID_FOR_SEGMENT[parts[i - 1]]]))
        elif part.startswith("{"):
            out.append(str(ids[part[1:-1]]))
        else:
            out.append(part)
    return "/" + "/".join(out) + "/"


def test_every_operation_has_an_expectation():
    operations = set(schema_operations())
    missing = sorted(operations - set(EXPECTED))
    stale = sorted(set(EXPECTED) - operations)
    assert not missing, f"endpoints without an expected status per persona (add them to EXPECTED): {missing}"
    assert not stale, f"expectations for endpoints that are not in the schema any more: {stale}"


def test_permission_matrix(matrix_ids, api):
    mismatches = []
    for method, path in schema_operations():
        body, expected = EXPECTED[(method, path)]
        url = fill(path, matrix_ids)
        for persona in PERSONAS:
            data = body(matrix_ids) if callable(body) and body is not upload else body
            fmt = "json"
            if body is upload:
                data, fmt = upload(), "multipart"
            with transaction.atomic():
                response = getattr(api(persona), method.lower())(url, data=data, format=fmt)
                transaction.set_rollback(True)
            if response.status_code != expected[persona]:
                detail = response.json().get("detail") if response.get("Content-Type") == "application/json" else ""
                mismatches.append(f"{method} {url} as {persona}: {response.status_code} (expected "
                                  f"{expected[persona]}) {detail}")
            if response.status_code >= 400 and response.get("Content-Type") == "application/json":
                assert set(response.json()) >= {"detail", "errors"}, f"{method} {url}: error body {response.json()}"
    assert not mismatches, "\n".join(mismatches)
