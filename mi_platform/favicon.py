"""``/favicon.ico``: browsers ask for it even when a page names its icon; answer with the static icon."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    # Resolved per request, not at import: with the manifest storage the hashed name needs collectstatic.
    return HttpResponseRedirect(static("favicon.svg"))
