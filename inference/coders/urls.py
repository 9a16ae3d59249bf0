from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("studies/<slug:slug>/machine-coders/", views.coder_list, name="machine-coders"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/", views.coder_detail, name="machine-coder-detail"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/add/", views.coder_add_to_round, name="machine-coder-add"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/retrain/", views.coder_retrain, name="machine-coder-retrain"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/runs/<int:run_pk>/", views.run_detail,
         name="machine-coding-run"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/runs/<int:run_pk>/retry/", views.run_retry,
         name="machine-coding-run-retry"),
]
