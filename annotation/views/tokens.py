"""Token pages on the account page: create (the raw token is shown once) and revoke. Parse → act → render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import actions
from ..models import ApiToken
from .account import render_account


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        _token, raw = actions.create_token(request.user, request.POST.get("name", ""))
    except actions.ActionError as exc:
        messages.error(request, str(exc))
        return render_account(request, status=400)
    # Rendered, not redirected: the raw token must never travel in a URL or be stored in the session.
    return render_account(request, new_token=raw)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        actions.revoke_token(request.user, pk)
    except ApiToken.DoesNotExist as exc:
        raise Http404(_("No such token.")) from exc
    messages.success(request, _("Token revoked."))
    return redirect("account")
