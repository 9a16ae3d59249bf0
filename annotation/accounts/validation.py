"""The API's door: every body is checked before a serializer, an action or the database sees it.

The settings name these parsers (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``). Every key and string
value of a JSON, form or multipart body, and every uploaded file's name, goes through
``annotation.parsers.characters`` (lone surrogates, NUL and other control characters, bidi overrides
refused; tab and newlines allowed in values); a refused one is a 400 naming the field by its dotted
path (``sources.3``, ``metadata.note``). JSON nested deeper than ``MAX_JSON_DEPTH`` is refused too: no
request of this API nests more than a few levels, and Python's parser would otherwise recurse until it
fails.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from ..parsers.characters import bad_character

MAX_JSON_DEPTH = 20


def _path(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def check_data(data: Any) -> None:
    """Raise a 400 (``ValidationError`` keyed by the field's path) for the first refused character or a
    structure nested deeper than ``MAX_JSON_DEPTH``; walks iteratively, so depth costs no recursion."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise exceptions.ValidationError(
                {path or "non_field_errors": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]})
        if isinstance(value, str):
            _check_text(path or "non_field_errors", value)
        elif isinstance(value, dict):
            for key, item in value.items():
                key_problem = bad_character(str(key), multiline=False)
                if key_problem is not None:
                    raise exceptions.ValidationError({"non_field_errors": [f"A field name contains {key_problem}."]})
                stack.append((_path(path, key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend((_path(path, i), item, depth + 1) for i, item in enumerate(value))


def _check_text(field: str, text: str) -> None:
    problem = bad_character(text)
    if problem is not None:
        raise exceptions.ValidationError({field: [f"Contains {problem}, which is not allowed."]})


class CheckedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        check_data(data)
        return data


def _check_form(data, files=None) -> None:
    for key, values in data.lists():
        key_problem = bad_character(key, multiline=False)
        if key_problem is not None:
            raise exceptions.ValidationError({"non_field_errors": [f"A field name contains {key_problem}."]})
        for value in values:
            _check_text(key, value)
    for key, upload in (files.items() if files is not None else ()):
        problem = bad_character(upload.name or "", multiline=False)
        if problem is not None:
            raise exceptions.ValidationError({key: [f"The file name contains {problem}; rename the file."]})


class CheckedFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class CheckedMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data, result.files)
        return result


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """A client whose Accept names nothing the view renders (``text/html`` only) gets the view's first
    renderer (JSON) rather than a 406: the API has one representation."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            renderer = renderers[0]
            return renderer, renderer.media_type
