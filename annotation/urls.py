from __future__ import annotations

from django.urls import path

from .views import account, studies

urlpatterns = [
    path("account/", account.account, name="account"),
    path("studies/", studies.study_list, name="study-list"),
    path("studies/new/", studies.study_create, name="study-create"),
    path("studies/<slug:slug>/", studies.study_detail, name="study-detail"),
    path("studies/<slug:slug>/members/", studies.study_members, name="study-members"),
    path("studies/<slug:slug>/import/", studies.study_import, name="study-import"),
    path("studies/<slug:slug>/split/", studies.study_split, name="study-split"),
    path("studies/<slug:slug>/dialogues/", studies.dialogue_list, name="dialogue-list"),
    path("studies/<slug:slug>/dialogues/<int:pk>/", studies.dialogue_detail, name="dialogue-detail"),
]

from .views import tokens  # noqa: E402  (token pages, appended by the API work)

urlpatterns += [
    path("account/tokens/", tokens.token_create, name="token-create"),
    path("account/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
]
