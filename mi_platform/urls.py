"""URL wiring only: each app owns its urls module."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from annotation.accounts.views import LoginView, admin_login

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="study-list", permanent=False)),
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
    path("", include("evaluation.urls")),
]
