"""One error body for the whole API: ``{"detail": "...", "errors": {field: [messages]}}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        errors = {k: (v if isinstance(v, list) else [v]) for k, v in errors.items()}
        first = next(iter(errors.values()), ["Invalid input."])
        detail = str(first[0]) if first else "Invalid input."
        response.data = {"detail": detail, "errors": errors}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        detail = data.get("detail") if isinstance(data, dict) else data
        response.data = {"detail": str(detail), "errors": {}}
    return response


def error_response(detail: str, code: int, errors: dict | None = None) -> Response:
    return Response({"detail": detail, "errors": errors or {}}, status=code)
