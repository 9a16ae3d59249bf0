"""Failed sign-in counting for the browser login page.

The limit is the API's ``auth`` throttle rate (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"]``,
``API_AUTH_THROTTLE``, e.g. ``20/min``): one setting for every place that takes a password. Here it
counts *failed* sign-ins only, per client address and per username, each in a fixed window that opens
with the first failure; once either count reaches the limit, sign-ins are refused (right password or
not) until that window closes. A successful sign-in is never counted.

Counters live in Django's default cache: Redis when ``REDIS_URL`` is set (shared by every web worker),
else local memory (per process).
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle

SCOPE = "auth"
KEY_PREFIX = "login-failures"


def _now() -> float:
    return time.time()


def failure_limit() -> tuple[int, int]:
    """(failures allowed, window in seconds), parsed exactly as DRF parses the ``auth`` rate."""
    # Read on every call (not bound at import like DRF's class attribute) so a settings override applies.
    return ScopedRateThrottle().parse_rate(api_settings.DEFAULT_THROTTLE_RATES[SCOPE])


def client_ident(request: HttpRequest) -> str:
    """The client address as the API throttle sees it (``REST_FRAMEWORK["NUM_PROXIES"]`` applies to both)."""
    return BaseThrottle().get_ident(request) or "unknown"


def _keys(ident: str, username: str) -> list[str]:
    keys = [f"{KEY_PREFIX}:ip:{ident}"]
    if username:
        keys.append(_username_key(username))
    return keys


def _username_key(username: str) -> str:
    # Hashed: usernames may hold characters or lengths a cache key must not (memcached's rules, which
    # Django's cache warns about on every backend). Case-folded so case variants share one counter.
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    return f"{KEY_PREFIX}:user:{digest}"


def retry_after(ident: str, username: str) -> int | None:
    """Seconds until sign-ins from ``ident`` for ``username`` are accepted again; None when not blocked."""
    limit, _window = failure_limit()
    keys = _keys(ident, username)
    counts = cache.get_many(keys)
    blocked = [key for key in keys if counts.get(key, 0) >= limit]
    if not blocked:
        return None
    ends = cache.get_many([f"{key}:until" for key in blocked]).values()
    # The later window decides; at least one second, so a 429 never says "try again in 0".
    return max([math.ceil(end - _now()) for end in ends] + [1])


def record_failure(ident: str, username: str) -> None:
    """Count one failed sign-in against the client address and the username."""
    _limit, window = failure_limit()
    for key in _keys(ident, username):
        # add() opens a window only when none is open; the end is kept beside the count so a refusal can
        # say how long to wait. incr() is atomic on Redis (and locked in local memory): concurrent
        # failures are all counted. It raises if the window closed between the two calls: start anew.
        cache.add(f"{key}:until", _now() + window, window)
        cache.add(key, 0, window)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, window)
            cache.set(f"{key}:until", _now() + window, window)


def record_success(username: str) -> None:
    """Forget the username's failures: whoever signed in knows the password.

    The address's count is kept: a client that owns one account must not reset its address's count by
    signing in to it between guesses at others.
    """
    key = _username_key(username)
    cache.delete_many([key, f"{key}:until"])


def minutes(seconds: int) -> int:
    """Whole minutes to tell a person, rounded up."""
    return max(1, math.ceil(seconds / 60))
