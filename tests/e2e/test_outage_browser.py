"""The coding page across a real database outage: the save is kept queued and sent when the database is back.

The live server's database is taken away for real: its open PostgreSQL sessions are terminated
(``pg_terminate_backend``) and the connection settings it reconnects with point at a closed port, so
every request it serves meets ``OperationalError`` exactly as it would with the server down. The
network between browser and web server stays up: what the page sees are the server's 503 answers.
The test thread keeps its own (already open) connection to check the database.
"""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.annotation.test_coding_actions import number, utterances_of
from tests.e2e.test_coding_browser import codes_of, first_assignment, wait_until

pytestmark = pytest.mark.browser

__all__ = ["first_assignment"]  # the fixture, shared with the coding browser tests


def closed_port() -> int:
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_down():
    settings_dict = connection.settings_dict  # the same dict every thread's connection is built from
    saved = dict(settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    try:
        yield
    finally:
        settings_dict.update(HOST=saved["HOST"], PORT=saved["PORT"])


def test_a_save_made_while_the_database_is_down_stays_queued_and_is_sent_after(
    browser_context, login, first_assignment  # noqa: F811 - the imported fixture
):
    assignment = first_assignment
    first = utterances_of(assignment)[0]
    row = f"#u-{number(first)}"  # the coder-facing number (docs/blinding.md), read before the outage
    page = browser_context.new_page()
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if re.search(r"/code/\d+/code/$", r.url) else None)
    login(page, "coder", next_url=f"/code/{assignment.pk}/")
    expect(page.locator(row)).to_have_class(re.compile(r"\bis-current\b"))

    with database_down():
        page.keyboard.press("c")
        wait_until(page, lambda: 503 in answers, what="the server's 503 while the database is down")
        expect(page.locator(f'{row} button[value="CR"]')).to_have_class(re.compile(r"\bis-pending\b"))
        expect(page.locator("#save-state")).not_to_have_text("Saved")
        # a retry meets the outage too (a new connection to the closed port), and nothing was written
        wait_until(page, lambda: answers.count(503) >= 2, what="a retry during the outage")
        assert codes_of(assignment) == {}

    wait_until(page, lambda: codes_of(assignment) == {first.pk: "CR"}, timeout=20, what="queued CR sent after")
    expect(page.locator("#save-state")).to_have_text("Saved")
    expect(page.locator(".is-pending")).to_have_count(0)
    assert set(answers) <= {503, 200} and answers[-1] == 200, answers
