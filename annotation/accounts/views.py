"""The user's own page (password change link, API tokens), its token forms, and the throttled login pages.

Parse → act → render; token writes go through :mod:`.tokens`."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..errors import ActionError
from ..models import ApiToken
from . import throttling, tokens


def render_account(request: HttpRequest, *, new_token: str = "", status: int = 200) -> HttpResponse:
    """The account page; ``new_token`` is the raw token just created (shown once)."""
    context = {"tokens": tokens.active_tokens(request.user), "new_token": new_token, "token_revoke_url": True}
    response = render(request, "annotation/account.html", context, status=status)
    if new_token:
        # The page holds a secret: keep it out of browser and proxy caches.
        response["Cache-Control"] = "no-store"
    return response


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render_account(request)


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    try:
        _token, raw = tokens.create_token(request.user, request.POST.get("name", ""))
    except ActionError as exc:
        messages.error(request, str(exc))
        return render_account(request, status=400)
    # Rendered, not redirected: the raw token must never travel in a URL or be stored in the session.
    return render_account(request, new_token=raw)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        tokens.revoke_token(request.user, pk)
    except ApiToken.DoesNotExist as exc:
        raise Http404(_("No such token.")) from exc
    messages.success(request, _("Token revoked."))
    return redirect("account")


class LoginView(auth_views.LoginView):
    """Django's login page, refusing sign-ins with 429 after too many failures (``annotation.accounts.throttling``).

    GET is never refused. A refused POST is not authenticated at all, so a right password gets the
    same answer as a wrong one until the window closes.
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        wait = throttling.retry_after(throttling.client_ident(request), username)
        if wait is not None:
            return self.refuse(username, wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        throttling.record_success(form.get_user().get_username())
        return super().form_valid(form)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        throttling.record_failure(throttling.client_ident(self.request), self.request.POST.get("username", ""))
        return super().form_invalid(form)

    def refuse(self, username: str, wait: int) -> HttpResponse:
        n = throttling.minutes(wait)
        message = ngettext(
            "Too many failed sign-in attempts. Try again in %(minutes)d minute.",
            "Too many failed sign-in attempts. Try again in %(minutes)d minutes.",
            n,
        ) % {"minutes": n}
        # An unbound form: a bound one would authenticate when the template asks for its errors.
        form = self.get_form_class()(self.request, initial={"username": username})
        response = self.render_to_response(self.get_context_data(form=form, throttled=message), status=429)
        response["Retry-After"] = str(wait)
        return response


@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page with the same throttle: Django's ``AdminSite.login``, built on our LoginView.

    Routed at ``admin/login/`` ahead of the admin's URLs (so ``admin:login`` still points here).
    """
    site = admin.site
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
    context = {
        **site.each_context(request),
        "title": _("Log in"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    request.current_app = site.name
    view = LoginView.as_view(
        extra_context=context,
        authentication_form=site.login_form or AdminAuthenticationForm,
        template_name=site.login_template or "admin/login.html",
    )
    return view(request)
