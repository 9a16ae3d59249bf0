"""The user's own page: password change link, API tokens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_account(request: HttpRequest, *, new_token: str = "", status: int = 200) -> HttpResponse:
    """The account page; ``new_token`` is the raw token just created (shown once)."""
    tokens = request.user.api_tokens.filter(revoked_at__isnull=True)
    context = {"tokens": tokens, "new_token": new_token, "token_revoke_url": True}
    response = render(request, "annotation/account.html", context, status=status)
    if new_token:
        # The page holds a secret: keep it out of browser and proxy caches.
        response["Cache-Control"] = "no-store"
    return response


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render_account(request)
