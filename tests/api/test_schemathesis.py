"""Schemathesis against the live schema: every operation, a bounded number of generated requests each.

The schema is fetched from the running application (``/api/schema/``) through WSGI, requests carry a
coordinator's token, and each response must be no 5xx and conform to the schema (status code
documented, content type, body). Path parameters are pinned to real objects of the test study so the
generated bodies and queries reach the views' logic instead of stopping at a 404.
Deterministic: Hypothesis runs derandomized, without its example database.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.api.conftest import ID_FOR_SEGMENT

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 15


@pytest.fixture
def keep_test_connection():
    """Keep the test's database connection across raw WSGI requests.

    Django closes "old" connections when a request starts and ends, and inside the test transaction
    (autocommit off) it counts as old; Django's own test client switches this off the same way.
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(keep_test_connection):
    import schemathesis

    from mi_platform.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    # Generated strings may hold NUL (schemathesis' default, said here so a change of default cannot
    # silently drop it): PostgreSQL text cannot store it, so every one must be refused with a 400.
    # Lone surrogates cannot be generated (strings are UTF-8); tests/api/test_hostile_input.py sends them.
    schema.config.generation.update(allow_x00=True, codec="utf-8")
    return schema


def pinned_path_parameters(path: str, ids: dict[str, object]) -> dict[str, object]:
    parts = path.strip("/").split("/")
    pinned: dict[str, object] = {}
    for i, part in enumerate(parts):
        if part == "{id}":
            pinned["id"] = ids[ID_FOR_SEGMENT[parts[i - 1]]]
        elif part.startswith("{"):
            pinned[part[1:-1]] = ids[part[1:-1]]
    return pinned


def test_api_conforms_to_its_schema(api_schema, matrix_ids, tokens, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    # Generated token requests would otherwise mostly meet the 20/min throttle (a 429, documented, but
    # it would hide what the view does with the body).
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "100000/min"})
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance]
    # The coder's own endpoints answer anybody else 404: fuzz them with the coder's token to get past it.
    coordinator = {"Authorization": f"Bearer {tokens['coordinator']}"}
    coder = {"Authorization": f"Bearer {tokens['coder']}"}
    failures: list[str] = []
    statuses: dict[str, set[int]] = defaultdict(set)
    with_nul: dict[str, set[int]] = defaultdict(set)  # statuses of generated requests carrying a NUL
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 40

    def fuzz(operation, headers: dict[str, str]) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        strategy = operation.as_strategy(path_parameters=pinned_path_parameters(operation.path, matrix_ids))

        @given(case=strategy)
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
        def exercise(case):
            response = case.call_and_validate(headers=headers, checks=checks)
            statuses[label].add(response.status_code)
            if "\x00" in repr((case.body, case.query, case.path_parameters)) or "\\x00" in repr(case.body):
                with_nul[label].add(response.status_code)

        try:
            exercise()
        except Exception as exc:  # one operation's failure must not hide the others'
            failures.append(f"{label}: {type(exc).__name__}: {exc}"[:3000])

    for operation in operations:
        fuzz(operation, coder if operation.path.startswith("/api/assignments/") else coordinator)
    for label, codes in sorted(statuses.items()):  # visible with -s: what the fuzzing reached
        print(f"{label}: {sorted(codes)}")
    assert not failures, "\n\n".join(failures)
    print(f"requests with a NUL: {dict(with_nul)}")
    assert api_schema.config.generation.allow_x00 is True
    assert len(with_nul) >= 5, f"too few operations met a generated NUL: {dict(with_nul)}"
    assert all(code < 500 for codes in with_nul.values() for code in codes)
    # The fuzzing got past authentication and routing: most operations saw a success.
    succeeded = [op for op, codes in statuses.items() if any(200 <= c < 300 for c in codes)]
    assert len(succeeded) >= 0.6 * len(operations), {op: sorted(codes) for op, codes in statuses.items()}
