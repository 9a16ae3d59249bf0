"""Outages degrade clearly: with the database or the cache unreachable, pages answer a translated 503
with Retry-After, the API a JSON 503 in its error shape; /healthz says which service is down.

"Unreachable" is simulated at the connection: ``ensure_connection`` (what every query goes through
before it talks to the server) raises ``OperationalError`` as psycopg does for a refused connection;
the Redis cache raises redis-py's ``ConnectionError``. The browser test in
tests/e2e/test_outage_browser.py takes the live server's database away for real.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client, RequestFactory
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

MESSAGE_EN = "The platform cannot reach its database or cache right now."
MESSAGE_ZH = "平台暂时无法连接数据库或缓存。"


@contextmanager
def database_down():
    def refuse(self):
        raise OperationalError('connection to server at "127.0.0.1", port 1 failed: Connection refused')

    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection", refuse):
        yield


def assert_page_503(response, message=MESSAGE_EN):
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    assert message in response.content.decode()


def assert_api_503(response):
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == "30"
    body = json.loads(response.content)
    assert set(body) == {"detail", "errors"} and body["detail"].startswith(MESSAGE_EN)


@pytest.fixture
def plain_client():
    # Never re-raise a view's exception into the test: see what a browser would get.
    return Client(raise_request_exception=False)


def test_pages_answer_a_translated_503_when_the_database_is_down(plain_client, coordinator, coder, study):
    from annotation import actions

    plain_client.force_login(coder)
    with database_down():
        for url in ("/studies/", "/code/", f"/studies/{study.slug}/"):
            assert_page_503(plain_client.get(url))
        # HTMX save of a code (any id: the session cannot even be read)
        assert_page_503(plain_client.post("/code/1/code/", {"utterance": 1, "code": "GI", "version": 0},
                                          HTTP_HX_REQUEST="true"))
        chinese = plain_client.get("/studies/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert_page_503(chinese, MESSAGE_ZH)
    # Login POST: the credentials cannot be checked.
    anonymous = Client(raise_request_exception=False)
    with database_down():
        assert_page_503(anonymous.post("/accounts/login/", {"username": "coder", "password": PASSWORD}))
    # Back up: the same session works again.
    assert plain_client.get("/studies/").status_code == 200
    assert actions  # the study was made through the actions (fixture)


def test_api_answers_json_503_when_the_database_is_down(api, study):
    client = api("coder")
    with database_down():
        assert_api_503(client.get("/api/queue/"))
        assert_api_503(client.post("/api/assignments/1/codes/", {"utterance": 1, "code": "GI", "version": 0},
                                   format="json"))
        assert_api_503(api("coordinator").get(f"/api/studies/{study.slug}/dialogues/"))
    assert client.get("/api/queue/").status_code == 200


def test_cache_down_answers_503_on_login(plain_client, coder):
    from django.core.cache import caches

    backend = type(caches["default"])  # the failed sign-in throttle counts in the cache
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with mock.patch.object(backend, "get", side_effect=refused), mock.patch.object(backend, "add", side_effect=refused), \
            mock.patch.object(backend, "incr", side_effect=refused), mock.patch.object(backend, "set", side_effect=refused):
        response = plain_client.post("/accounts/login/", {"username": "coder", "password": "wrong"})
    assert_page_503(response)


def test_an_outage_in_a_middleware_is_a_503_too():
    """handler500 runs inside Django's except block: a session saved to a database that is down (in
    SessionMiddleware, after the view) is an outage, not a server error."""
    from annotation.accounts.middleware import server_error

    factory = RequestFactory()
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        page = server_error(factory.get("/studies/"))
        api = server_error(factory.get("/api/queue/"))
    assert_page_503(page)
    assert_api_503(api)
    try:
        raise ZeroDivisionError
    except ZeroDivisionError:
        api = server_error(factory.get("/api/queue/"))
    assert api.status_code == 500 and json.loads(api.content) == {"detail": "Server error; it has been logged.", "errors": {}}


def test_healthz_reports_each_service(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert {name: check["ok"] for name, check in body["checks"].items() if name != "workers"} == {
        "database": True, "cache": True, "broker": True}
    # No worker runs in this test: degraded, still 200 (pages and the API work; queued work waits).
    assert body["status"] == ("ok" if body["checks"]["workers"]["ok"] else "degraded")
    with database_down():
        down = client.get("/healthz")
    assert down.status_code == 503 and down["Retry-After"] == "30"
    assert down.json()["status"] == "down"
    assert down.json()["checks"]["database"] == {"ok": False, "detail": "unreachable (OperationalError)",
                                                 "ms": down.json()["checks"]["database"]["ms"]}
    assert "127.0.0.1" not in down.content.decode()  # no host names leak
