from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("models/new/", views.model_register, name="model-register"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("models/<int:pk>/test/", views.model_test, name="model-test"),
    path("models/<int:pk>/test/<str:task_id>/", views.model_test_result, name="model-test-result"),
    path("studies/<slug:slug>/generation/", views.study_generation, name="study-generation"),
    path("studies/<slug:slug>/generation/runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("studies/<slug:slug>/generation/runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("studies/<slug:slug>/generation/runs/<int:pk>/resume/", views.run_resume, name="run-resume"),
    path(
        "studies/<slug:slug>/generation/runs/<int:pk>/items/<int:item_pk>/retry/",
        views.item_retry,
        name="item-retry",
    ),
]
