"""Failed sign-ins on the browser login page are throttled per client address and per username.

The limit is the API's ``auth`` rate; each test sets a small one. The root conftest clears the cache
around every test, so no count leaks from one test to the next.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
REFUSED = "Too many failed sign-in attempts. Try again in 1 minute."
WRONG = "Please enter a correct username and password."


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every failed sign-in checks a password hash; PBKDF2's deliberate slowness buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def auth_rate(settings):
    """``auth_rate("3/min")``: the API's (and so the login page's) ``auth`` throttle rate for this test."""

    def set_rate(rate: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": rate}}

    return set_rate


def sign_in(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in_as(client) -> str | None:
    from django.contrib.auth import get_user_model

    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id).username if user_id else None


def test_failures_up_to_the_limit_get_the_form_error_then_429_even_with_the_right_password(client, coder, auth_rate):
    auth_rate("3/min")
    for _ in range(3):
        response = sign_in(client, "coder", "wrong")
        assert response.status_code == 200
        assert WRONG in response.content.decode()

    response = sign_in(client, "coder", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert REFUSED in page and WRONG not in page
    assert 'id="id_username"' in page and 'value="coder"' in page  # the normal login page, name kept
    assert 0 < int(response["Retry-After"]) <= 60
    assert signed_in_as(client) is None


def test_get_is_never_refused(client, coder, auth_rate):
    auth_rate("1/min")
    sign_in(client, "coder", "wrong")
    assert sign_in(client, "coder", PASSWORD).status_code == 429
    response = client.get(LOGIN, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 200
    assert REFUSED not in response.content.decode()


def test_address_and_username_are_counted_separately(client, coder, coder2, auth_rate):
    auth_rate("2/min")
    for _ in range(2):
        sign_in(client, "coder", "wrong", ip="10.0.0.1")

    # Another username from the same address: the address is blocked.
    assert sign_in(client, "coder2", PASSWORD, ip="10.0.0.1").status_code == 429
    # The same username from another address: the username is blocked.
    assert sign_in(client, "coder", PASSWORD, ip="10.0.0.2").status_code == 429
    # Another username from another address: unaffected.
    response = sign_in(client, "coder2", PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302
    assert signed_in_as(client) == "coder2"


def test_successful_sign_ins_are_not_counted(client, coder, auth_rate):
    auth_rate("2/min")
    for _ in range(5):
        response = sign_in(client, "coder", PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/studies/"
        client.logout()
    # Two failures are still allowed after all those successes.
    assert [sign_in(client, "coder", "wrong").status_code for _ in range(3)] == [200, 200, 429]


def test_a_success_forgets_the_usernames_failures_but_not_the_addresses(client, coder, coder2, auth_rate):
    auth_rate("3/min")
    sign_in(client, "coder", "wrong", ip="10.0.0.1")
    sign_in(client, "coder", "wrong", ip="10.0.0.1")
    assert sign_in(client, "coder", PASSWORD, ip="10.0.0.2").status_code == 302
    client.logout()
    # The username starts afresh: three more failures are answered normally from another address.
    assert [sign_in(client, "coder", "wrong", ip="10.0.0.3").status_code for _ in range(3)] == [200, 200, 200]
    # The first address kept its two failures: one more, and it is refused whatever the username.
    assert sign_in(client, "coder2", "wrong", ip="10.0.0.1").status_code == 200
    assert sign_in(client, "coder2", PASSWORD, ip="10.0.0.1").status_code == 429


def test_the_count_expires_with_its_window(client, coder, auth_rate, monkeypatch):
    # A fake clock for the throttle and the (local-memory) cache, so the window closes without sleeping
    # and the failures cannot straddle a real one-second window on a slow machine.
    import types

    from django.core.cache.backends import base as cache_base
    from django.core.cache.backends import locmem

    from annotation.accounts import throttling

    now = [time.time()]
    clock = types.SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(locmem, "time", clock)
    monkeypatch.setattr(cache_base, "time", clock)
    monkeypatch.setattr(throttling, "_now", lambda: now[0])

    auth_rate("2/min")
    sign_in(client, "coder", "wrong")
    sign_in(client, "coder", "wrong")
    assert sign_in(client, "coder", PASSWORD).status_code == 429
    now[0] += 59
    assert sign_in(client, "coder", PASSWORD).status_code == 429  # still inside the window
    now[0] += 2
    response = sign_in(client, "coder", PASSWORD)
    assert response.status_code == 302
    assert signed_in_as(client) == "coder"


def test_the_wait_is_told_in_minutes(client, coder, auth_rate):
    auth_rate("1/hour")
    sign_in(client, "coder", "wrong")
    response = sign_in(client, "coder", "wrong")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 60 minutes." in response.content.decode()


def test_the_refusal_is_translated(client, coder, auth_rate, settings):
    auth_rate("1/min")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    sign_in(client, "coder", "wrong")
    response = sign_in(client, "coder", PASSWORD)
    assert response.status_code == 429
    assert "登录失败次数过多，请 1 分钟后再试。" in response.content.decode()


def test_a_client_cannot_dodge_the_address_limit_with_its_own_x_forwarded_for(client, auth_rate, settings):
    auth_rate("2/min")
    # Direct (NUM_PROXIES 0, the default): the header is ignored, the connection's address counts.
    for i in range(2):
        client.post(LOGIN, {"username": f"nobody{i}", "password": "x"}, REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=f"1.2.3.{i}")
    refused = client.post(LOGIN, {"username": "nobody9", "password": "x"}, REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="9.9.9.9")
    assert refused.status_code == 429

    # Behind one proxy (NUM_PROXIES 1): the address the proxy saw counts, so clients behind it are apart.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for i in range(2):
        client.post(LOGIN, {"username": f"other{i}", "password": "x"}, REMOTE_ADDR="10.0.0.8", HTTP_X_FORWARDED_FOR="5.5.5.5")
    assert client.post(LOGIN, {"username": "other9", "password": "x"}, REMOTE_ADDR="10.0.0.8", HTTP_X_FORWARDED_FOR="5.5.5.5").status_code == 429
    assert client.post(LOGIN, {"username": "other8", "password": "x"}, REMOTE_ADDR="10.0.0.8", HTTP_X_FORWARDED_FOR="6.6.6.6").status_code == 200


def test_the_admin_login_page_is_throttled_the_same_way(client, admin_user, admin2, auth_rate):
    auth_rate("2/min")
    admin_login = "/admin/login/"
    assert client.get(admin_login).status_code == 200
    for _ in range(2):
        wrong = client.post(admin_login, {"username": "admin", "password": "wrong"}, REMOTE_ADDR="10.0.0.5")
        assert wrong.status_code == 200 and "errornote" in wrong.content.decode()
    refused = client.post(admin_login, {"username": "admin", "password": PASSWORD}, REMOTE_ADDR="10.0.0.5")
    assert refused.status_code == 429
    assert REFUSED in refused.content.decode() and refused["Retry-After"]
    assert signed_in_as(client) is None
    # Another address, another admin name: the page works as Django's, and lands on the admin index.
    ok = client.post(admin_login + "?next=/admin/", {"username": "admin2", "password": PASSWORD}, REMOTE_ADDR="10.0.0.6")
    assert ok.status_code == 302 and ok["Location"] == "/admin/"
    assert signed_in_as(client) == "admin2"
    assert client.get(admin_login).status_code == 302  # already staff: straight to the index


@pytest.fixture
def admin2(make_user):
    return make_user("admin2", is_staff=True, is_superuser=True)
