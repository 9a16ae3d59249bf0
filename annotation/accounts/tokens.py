"""Personal API tokens: created on the account page or through ``POST /api/tokens/``, revoked by their owner.

Only a SHA-256 digest and a short prefix are stored; the raw token is returned once, by
``create_token``, and cannot be recovered afterwards. ``create_token``/``revoke_token`` are the
writes (also exported by ``annotation.actions``); ``active_tokens``/``token_user`` the reads.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..errors import ActionError
from ..models import ApiToken

# A recognisable prefix lets secret scanners and people spot a leaked token ("mip_…").
TOKEN_PREFIX = "mip_"
PREFIX_LENGTH = 10
MAX_ACTIVE_TOKENS = 50
# Touch ``last_used_at`` at most this often: avoids a write per request from busy scripts.
TOUCH_EVERY_SECONDS = 60


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def create_token(user, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the stored row and the raw token (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise ActionError("Give the token a name, e.g. the script or machine that will use it.")
    if len(name) > 100:
        raise ActionError("A token name has at most 100 characters.")
    # A cap keeps a runaway script from filling the table with tokens nobody can tell apart.
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_ACTIVE_TOKENS:
        raise ActionError(f"You already have {MAX_ACTIVE_TOKENS} active tokens; revoke one first.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:PREFIX_LENGTH], digest=token_digest(raw))
    return token, raw


@transaction.atomic
def revoke_token(user, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s own tokens (idempotent for an already revoked one)."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        # Somebody else's token is indistinguishable from a missing one.
        raise ApiToken.DoesNotExist("No such token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def active_tokens(user) -> QuerySet[ApiToken]:
    """The user's tokens that still work (the account page and ``GET /api/tokens/``)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True)


def token_user(raw: str) -> ApiToken | None:
    """The active token with this raw value, its user loaded (None for unknown, revoked or inactive).

    Records the use (``last_used_at``), at most once a minute.
    """
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_EVERY_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_of_deactivated_user(raw: str) -> bool:
    """Whether this raw value is an unrevoked token of a user who has been deactivated."""
    return ApiToken.objects.filter(
        digest=token_digest(raw), revoked_at__isnull=True, user__is_active=False
    ).exists()


__all__ = [
    "MAX_ACTIVE_TOKENS",
    "TOKEN_PREFIX",
    "active_tokens",
    "create_token",
    "revoke_token",
    "token_digest",
    "token_of_deactivated_user",
    "token_user",
]
