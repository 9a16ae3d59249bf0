"""Browser fixtures: Debian Chromium driven by Playwright's sync API against pytest-django's live server.

Tests here use ``live_server`` (and with it ``transactional_db``): the server thread must see the rows
the test commits. Playwright's sync API runs an event loop in the test thread, which Django's
async-safety check mistakes for async code, hence ``DJANGO_ALLOW_ASYNC_UNSAFE``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("MI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (Debian's, not a downloaded build)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package (scripts/ensure_services.sh "
            "does), point MI_CHROMIUM at another binary, or deselect browser tests with -m 'not browser'."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_context(browser, live_server, transactional_db):
    """A fresh browser profile (cookies, localStorage) pointed at the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def login():
    """``login(page, username)``: sign in through the real login page, as a person would."""
    from tests.conftest import PASSWORD

    def sign_in(page, username: str, next_url: str = "/code/") -> None:
        page.goto(f"/accounts/login/?next={next_url}")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")
        page.wait_for_url(f"**{next_url}")

    return sign_in
