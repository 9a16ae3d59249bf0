"""The API's ground floor: base classes every app's API views stand on, the one error body, and the
account endpoints (``/api/me/``, ``/api/tokens/``).

``ApiView`` turns an ``ActionError`` into 400 with the action's message and documents the error
responses on every operation (``ApiSchema``); ``StudyScopedView`` resolves ``/api/studies/<slug>/``
through ``annotation.queries.study_for``, so the API's permissions are the pages'. The settings name
:func:`exception_handler` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``): every error, DRF's or Django's,
leaves as ``{"detail": "...", "errors": {field: [messages]}}``.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from .. import parsers, queries
from ..errors import ActionError
from ..models import ApiToken, Study
from ..parsers.characters import bad_character
from . import tokens
from .middleware import OUTAGE_ERRORS, error_body, outage_response
from .serializers import (
    ErrorSerializer,
    MeSerializer,
    TokenCreatedSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)


def exception_handler(exc, context):
    """DRF's handler, then one body shape: ``{"detail": ..., "errors": {field: [messages]}}``.

    Also: a body over Django's size limit is 413, an outage (database, cache, broker) 503 with
    ``Retry-After``; echoed input never carries a refused character (shown as an escape instead).
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("Request body too large.", {"non_field_errors": [str(exc)]}), status=413)
    elif isinstance(exc, OUTAGE_ERRORS):
        request = context.get("request")
        return outage_response(request._request if request is not None else None, exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        errors = {k: (v if isinstance(v, list) else [v]) for k, v in errors.items()}
        first = next(iter(errors.values()), ["Invalid input."])
        detail = str(first[0]) if first else "Invalid input."
        response.data = error_body(detail, errors)
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        detail = data.get("detail") if isinstance(data, dict) else data
        response.data = error_body(str(detail))
    return response


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Bearer <token>`` (personal tokens) in the schema and Swagger UI."""

    target_class = "annotation.accounts.authentication.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (account page or POST /api/tokens/)."}


# --- shared base ------------------------------------------------------------------------------------------


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 1000


class ApiSchema(AutoSchema):
    """AutoSchema that documents the API's error responses (one body shape) on every operation.

    Schemathesis checks every response against the schema, so every status a view can return must be
    here: 400 (body or query string), 401/403/404 and 503 everywhere, 413 on writes, 429 where throttled.
    """

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return operation
        error = {"content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}}}
        codes = {"400": "Invalid input: a body field or a query parameter (a refused character, an unknown "
                        "filter value); `errors` names them.",
                 "401": "Not authenticated (no, invalid or revoked token).", "403": "Authenticated but not allowed.",
                 "404": "No such object, or not visible to you.",
                 "503": "The database or cache is unreachable for now; retry after `Retry-After` seconds."}
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            codes["413"] = "The request body is over the size limit."
        if getattr(self.view, "throttle_scope", None):
            codes["429"] = "Too many requests; retry later."
        for code, description in codes.items():
            operation["responses"].setdefault(code, {"description": description, **error})
        return operation


class ApiView(generics.GenericAPIView):
    """Base of every API view: action errors become 400 with the action's own message."""

    schema = ApiSchema()
    pagination_class = Pagination

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Query strings were checked by ErrorResponsesMiddleware; a path value (a username) with a refused
        # character names nothing that can exist.
        if any(bad_character(str(value), multiline=False) for value in kwargs.values()):
            raise exceptions.NotFound("Not found.")

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.ValidationError) and not isinstance(exc.detail, list):
            # Nested errors (list items, nested objects) become dotted keys: the error body keeps its one
            # shape, {field: [messages]}, e.g. {"sources.3": ["A valid integer is required."]}.
            exc = exceptions.ValidationError(flatten_errors(exc.detail))
        elif isinstance(exc, ActionError):
            exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
        elif isinstance(exc, parsers.ImportFormatError):
            # Same message as the import page shows (file, line/record and field named).
            exc = exceptions.ValidationError({"file": [str(exc)]})
        return super().handle_exception(exc)

    def paginated(self, rows, serializer_class, **context) -> Response:
        """A paginated list response of ``rows`` (a queryset or a plain list)."""
        page = self.paginate_queryset(rows)
        data = serializer_class(page, many=True, context={"request": self.request, **context}).data
        return self.get_paginated_response(data)

    def valid(self, serializer_class, data=None) -> dict:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as ``{"field.sub.0": [messages]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list) and all(not isinstance(item, dict | list) for item in detail):
        flat[prefix or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def choice_param(request: Request, name: str, allowed) -> str | None:
    """A filter parameter that must be one of ``allowed``: None when absent or empty, else the value;
    anything else is a 400 listing the allowed values (never a silently empty list)."""
    value = request.query_params.get(name)
    if not value:
        return None
    allowed = list(allowed)
    if value not in allowed:
        raise exceptions.ValidationError({name: [f"Unknown {name} '{value}'; use one of: {', '.join(allowed)}."]})
    return value


class StudyScopedView(ApiView):
    """A view under ``/api/studies/<slug>/``; ``study_role`` is the role it needs (None: any member)."""

    study_role: str | None = queries.COORDINATOR

    def get_study(self) -> Study:
        if not hasattr(self, "_study"):
            self._study = queries.study_for(self.request.user, self.kwargs["slug"], role=self.study_role)
        return self._study


def not_found(request: HttpRequest, *args, **kwargs):
    """JSON 404 for any path under /api/ that matches no endpoint (not Django's HTML page)."""
    return JsonResponse({"detail": "No such API endpoint.", "errors": {}}, status=404)


# --- the current user and tokens ---------------------------------------------------------------------------


class MeView(ApiView):
    @extend_schema(responses=MeSerializer, summary="The authenticated user")
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            MeSerializer(
                {"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff,
                 "can_create_studies": user.has_perm("annotation.add_study")}
            ).data
        )


class TokenListView(ApiView):
    """Your personal tokens. POST with username and password mints one (for scripts); throttled."""

    throttle_scope = "auth"
    serializer_class = TokenSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [permissions.AllowAny()]
        return super().get_permissions()

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method != "GET" else []

    def get_authenticators(self):
        # Minting takes credentials in the body: a stale or revoked token in the header must not turn
        # a correct username/password into a 401.
        if getattr(self, "request", None) is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(responses=TokenSerializer(many=True), summary="List your active tokens")
    def get(self, request: Request) -> Response:
        return self.paginated(tokens.active_tokens(request.user), TokenSerializer)

    @extend_schema(request=TokenRequestSerializer, responses={201: TokenCreatedSerializer},
                   summary="Create a token from a username and password", auth=[])
    def post(self, request: Request) -> Response:
        data = self.valid(TokenRequestSerializer)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None:
            raise exceptions.ValidationError({"non_field_errors": ["Invalid username or password."]})
        token, raw = tokens.create_token(user, data["name"])
        token.token = raw  # the raw value exists only in this response
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailView(ApiView):
    throttle_scope = "auth"

    def get_throttles(self):
        return [ScopedRateThrottle()]

    @extend_schema(request=None, responses={204: None}, summary="Revoke one of your tokens")
    def delete(self, request: Request, pk: int) -> Response:
        try:
            tokens.revoke_token(request.user, pk)
        except ApiToken.DoesNotExist as exc:
            raise Http404("No such token.") from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
