"""What a browser gets: every API list opened in a browser answers JSON (the browsable API is off; the
Swagger UI at /api/docs/ is the human view), never a 500; every page carries the security headers,
and no template holds an inline script or event handler (the Content-Security-Policy forbids them).
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from tests.api.test_permissions import fill, schema_operations

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def every_get_endpoint_opened_in_a_browser_answers_json(matrix_ids, coordinator, coder) -> int:
    """Signed in with the session (as a browser is), Accept as a browser sends it, and text/html alone.

    Run by tests/api/test_hostile_input.py's corpus test, which builds the same (expensive) world.
    """
    browsers = {}
    for user in (coordinator, coder):
        browsers[user.username] = Client(raise_request_exception=False)
        browsers[user.username].force_login(user)
    gets = [path for method, path in schema_operations() if method == "GET"]
    assert len(gets) >= 25
    answers = {}
    for path in gets:
        url = fill(path, matrix_ids)
        browser = browsers["coder" if path.startswith(("/api/assignments/", "/api/queue/")) else "coordinator"]
        for accept in (BROWSER_ACCEPT, "text/html"):
            response = browser.get(url, HTTP_ACCEPT=accept)
            answers[(path, accept)] = response.status_code
            assert response.status_code < 500, (path, accept, response.content[:300])
            if path.endswith("/download/"):
                continue  # the export file itself
            assert response["Content-Type"].startswith("application/json"), (path, accept, response["Content-Type"])
            if response.status_code == 200:
                assert isinstance(response.json(), dict | list)
    assert sum(status == 200 for status in answers.values()) >= 0.9 * len(answers), answers
    return len(answers)


def test_swagger_ui_is_the_human_view_without_inline_script(client, coordinator):
    client.force_login(coordinator)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> in the Swagger UI page"
    init = client.get("/api/docs/?script=")
    assert init.status_code == 200 and "SwaggerUIBundle" in init.content.decode()


@pytest.mark.parametrize("url", ["/accounts/login/", "/studies/", "/api/queue/", "/healthz", "/api/nowhere/"])
def test_security_headers_on_pages_and_api(client, coder, url):
    client.force_login(coder)
    response = client.get(url)
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no other origin
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


def test_no_template_holds_inline_script_or_handlers():
    root = settings.BASE_DIR / "templates"
    templates = sorted(root.rglob("*.html"))
    assert len(templates) > 40
    offenders = []
    for template in templates:
        text = template.read_text(encoding="utf-8")
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT, JS_URL, re.compile(r"\bhx-on")):
            offenders += [f"{template.relative_to(root)}: {m.group().strip()}" for m in pattern.finditer(text)]
    assert offenders == []


def test_compose_sets_secure_cookies_and_health_checks():
    import yaml

    compose = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())
    env = compose["x-app"]["environment"]
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT"):
        assert env[name] == f"${{{name}:-1}}", name
    services = compose["services"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "web", "worker"))
    assert services["web"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
