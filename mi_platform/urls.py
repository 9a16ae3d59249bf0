"""URL wiring only: each app owns its urls module."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from annotation.accounts.views import LoginView, admin_login
from mi_platform.favicon import favicon
from mi_platform.health import healthz

# Outages raised outside a view (a session saved to a database that is down) answer 503 too; under
# /api/ a 500 is JSON in the API's error shape.
handler500 = "annotation.accounts.middleware.server_error"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="study-list", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    # Before the admin's URLs: its login page, with failed sign-ins throttled like ours.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("api/", include("mi_platform.api_urls")),
    # Before Django's auth URLs: the same login page, with failed sign-ins throttled.
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("annotation.urls")),
    path("", include("inference.urls")),
    path("", include("inference.recipe.urls")),
    path("", include("inference.coders.urls")),
    path("", include("evaluation.urls")),
]
