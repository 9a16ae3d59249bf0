"""How every request is answered when something is wrong with it or with the services behind it.

- ``ErrorResponsesMiddleware`` (first in ``MIDDLEWARE``): under ``/api/`` every error leaves in the API's
  one body shape ``{"detail", "errors"}`` — also those Django answers itself before or around a view
  (a CSRF 403, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` as 413, a 500); a query string with a
  refused character (``annotation.parsers.characters``) is refused with 400 naming the parameter, on
  pages and API alike, before any view reads it; and an outage raised by a view (database, cache or
  broker unreachable) answers 503 with ``Retry-After``: a translated page, or JSON under ``/api/``.
- ``server_error`` (``handler500``): the same 503 for an outage raised in a middleware (a session
  saved to a database that is down), else JSON 500 under ``/api/`` and Django's page elsewhere.
- ``DeactivatedAccountMiddleware`` (after Django's ``AuthenticationMiddleware``): a request still carrying
  the session of a user who has since been deactivated answers 403 "account deactivated" (page or
  JSON) on every URL but the login pages (which end that session), instead of passing as anonymous
  to a login redirect with no explanation.
- ``SecurityHeadersMiddleware``: Content-Security-Policy (no inline script anywhere) and
  Permissions-Policy; Django's SecurityMiddleware sends Referrer-Policy and X-Content-Type-Options.
"""

from __future__ import annotations

import logging
import sys
from http import HTTPStatus

from django.conf import settings
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views import defaults
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..parsers.characters import bad_character, clean_for_display

log = logging.getLogger(__name__)

# A service the request needs is unreachable or failing for now: answer 503, never a bare 500.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseOperationalError, DatabaseInterfaceError, RedisConnectionError, RedisTimeoutError, BrokerOperationalError,
)
RETRY_AFTER_SECONDS = 30


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def error_body(detail: str, errors: dict[str, list[str]] | None = None) -> dict[str, object]:
    """The API's one error body; refused characters in echoed input are shown as escapes."""
    return {
        "detail": clean_for_display(str(detail)),
        "errors": {clean_for_display(str(k)): [clean_for_display(str(m)) for m in v] for k, v in (errors or {}).items()},
    }


def outage_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 with Retry-After: JSON under /api/, else a translated page that needs no database or session."""
    log.warning("service unavailable for %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)
    message = _("The platform cannot reach its database or cache right now. Nothing was lost: try again in "
                "a moment. Unsent codes on the coding page are kept in your browser and sent when it is back.")
    if is_api(request):
        response: HttpResponse = JsonResponse(error_body(message), status=503)
    else:
        html = render_to_string("503.html", {"message": message, "title": _("Temporarily unavailable")})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: runs inside Django's ``except`` block, so the exception is ``sys.exc_info()``."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OUTAGE_ERRORS):
        return outage_response(request, exc)
    if is_api(request):
        return JsonResponse(error_body(_("Server error; it has been logged.")), status=500)
    return defaults.server_error(request)


_DETAILS = {
    400: "Bad request.",
    403: "Permission denied.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    429: "Too many requests; retry later.",
    500: "Server error; it has been logged.",
    503: "Service unavailable; retry later.",
}


def _query_problem(request: HttpRequest) -> JsonResponse | HttpResponse | None:
    for key, values in request.GET.lists():
        for text, what in ((key, "name"), *((value, "value") for value in values)):
            problem = bad_character(text, multiline=False)
            if problem is not None:
                name = clean_for_display(key)
                message = _("Query parameter %(name)s: its %(what)s contains %(problem)s, which is not allowed.") % {
                    "name": name, "what": what, "problem": problem}
                if is_api(request):
                    return JsonResponse(error_body(message, {name: [message]}), status=400)
                return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    return None


def _too_large(request: HttpRequest) -> JsonResponse | None:
    """A JSON or form body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused before anything reads it (uploads'
    files are not counted by Django's limit: multipart bodies are left to it and to the import size limit)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or request.content_type == "multipart/form-data":
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= limit:
        return None
    message = _("The request body is %(size)s bytes, over the limit of %(limit)s bytes.") % {
        "size": f"{length:,}", "limit": f"{limit:,}"}
    return JsonResponse(error_body(message, {"non_field_errors": [message]}), status=413)


class ErrorResponsesMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = _query_problem(request) or (_too_large(request) if is_api(request) else None)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not _is_json(response):
            response = self._as_json(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OUTAGE_ERRORS):
            return outage_response(request, exception)
        return None

    @staticmethod
    def _as_json(response: HttpResponse) -> JsonResponse:
        """Django's own HTML/plain error (CSRF failure, RequestDataTooBig, 404, 500) in the API's shape."""
        status = response.status_code
        try:
            detail = _DETAILS.get(status) or f"{HTTPStatus(status).phrase}."
        except ValueError:
            detail = "Error."
        if status == 403 and b"CSRF" in getattr(response, "content", b""):
            detail = "CSRF verification failed: send the X-CSRFToken header, or use a personal token."
        converted = JsonResponse(error_body(detail), status=status)
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                converted[header] = response[header]
        return converted


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith(("application/json", "application/problem+json"))


# --- security headers ------------------------------------------------------------------------------------------

# No inline script anywhere (templates load static files only; Swagger UI is served split, its
# initialiser a static file); inline styles stay allowed for the progress bars' widths and htmx's
# indicator style.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()" for feature in (
        "accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone", "payment", "usb",
    )
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


__all__ = ["OUTAGE_ERRORS", "ErrorResponsesMiddleware", "SecurityHeadersMiddleware", "error_body", "outage_response",
           "server_error"]


class DeactivatedAccountMiddleware:
    """Answer a deactivated user's session with a 403 that says why (the login pages end the session).

    Django's session authentication already treats an inactive user as anonymous, so without this a
    deactivated coder's next click would land on the login page with no explanation. Costs one query
    only when a session names a user that did not authenticate (deactivated, deleted, or a password
    changed elsewhere); ordinary requests touch nothing extra.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import SESSION_KEY, get_user_model
        from django.shortcuts import resolve_url

        if not request.user.is_authenticated:
            user_id = request.session.get(SESSION_KEY)
            if user_id is not None and get_user_model().objects.filter(pk=user_id, is_active=False).exists():
                if request.path_info in (resolve_url(settings.LOGIN_URL), "/admin/login/"):
                    # Signing in (as someone else) is the way out: end the stale session there.
                    request.session.flush()
                    return self.get_response(request)
                message = _("This account has been deactivated, so it can no longer see or change any study. "
                            "Ask the study's coordinator or an administrator if you need access again.")
                if is_api(request):
                    return JsonResponse(error_body(message), status=403)
                return HttpResponse(
                    render_to_string("registration/deactivated.html", {"message": message}, request=request),
                    status=403,
                )
        return self.get_response(request)
