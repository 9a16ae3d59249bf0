"""Pages of the MI-LLM recipe, included from ``mi_platform.urls``."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("studies/<slug:slug>/recipe/", views.recipe_home, name="recipe-home"),
    path("studies/<slug:slug>/recipe/transform/new/", views.transform_start, name="recipe-transform-start"),
    path(
        "studies/<slug:slug>/recipe/transform/<int:pk>/",
        views.transform_detail,
        name="recipe-transform-detail",
    ),
    path(
        "studies/<slug:slug>/recipe/transform/<int:pk>/cancel/",
        views.transform_cancel,
        name="recipe-transform-cancel",
    ),
    path(
        "studies/<slug:slug>/recipe/transform/<int:pk>/retry/",
        views.transform_retry,
        name="recipe-transform-retry",
    ),
    path(
        "studies/<slug:slug>/recipe/transform/<int:pk>/items/<int:item_pk>/",
        views.transform_item,
        name="recipe-transform-item",
    ),
    path("studies/<slug:slug>/recipe/prompts/", views.prompt_list, name="recipe-prompts"),
    path("studies/<slug:slug>/recipe/prompts/new/", views.prompt_edit, name="recipe-prompt-new"),
    path("studies/<slug:slug>/recipe/prompts/<int:pk>/edit/", views.prompt_edit, name="recipe-prompt-edit"),
    path("studies/<slug:slug>/recipe/export/", views.export_training, name="recipe-export"),
    path("studies/<slug:slug>/recipe/finetune/new/", views.finetune_start, name="recipe-finetune-start"),
    path(
        "studies/<slug:slug>/recipe/finetune/<int:pk>/", views.finetune_detail, name="recipe-finetune-detail"
    ),
    path(
        "studies/<slug:slug>/recipe/finetune/<int:pk>/stop/", views.finetune_stop, name="recipe-finetune-stop"
    ),
    path("models/<int:pk>/provenance/", views.model_provenance, name="model-provenance"),
]
