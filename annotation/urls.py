"""Pages of the annotation app: accounts, studies, coordinator rounds, the coder's workspace."""

from __future__ import annotations

from django.urls import path

from .accounts import views as account
from .views import coding, rounds, studies

urlpatterns = [
    # The user's own page and its token forms (the login pages are wired in mi_platform.urls).
    path("account/", account.account, name="account"),
    path("account/tokens/", account.token_create, name="token-create"),
    path("account/tokens/<int:pk>/revoke/", account.token_revoke, name="token-revoke"),
    path("studies/", studies.study_list, name="study-list"),
    path("studies/new/", studies.study_create, name="study-create"),
    path("studies/<slug:slug>/", studies.study_detail, name="study-detail"),
    path("studies/<slug:slug>/members/", studies.study_members, name="study-members"),
    path("studies/<slug:slug>/import/", studies.study_import, name="study-import"),
    path("studies/<slug:slug>/imports/<int:pk>/", studies.import_status, name="import-status"),
    path("studies/<slug:slug>/split/", studies.study_split, name="study-split"),
    path("studies/<slug:slug>/dialogues/", studies.dialogue_list, name="dialogue-list"),
    path("studies/<slug:slug>/dialogues/<int:pk>/", studies.dialogue_detail, name="dialogue-detail"),
]

# Transcripts and segmentation, rounds, progress, adjudication.
urlpatterns += [
    path("studies/<slug:slug>/transcripts/", rounds.transcripts, name="round-transcripts"),
    path("studies/<slug:slug>/transcripts/reference/", rounds.create_reference, name="round-create-reference"),
    path("studies/<slug:slug>/transcripts/sources/<int:pk>/", rounds.source_detail, name="round-source"),
    path("studies/<slug:slug>/transcripts/<int:pk>/", rounds.transcript_detail, name="round-transcript"),
    path("studies/<slug:slug>/transcripts/<int:pk>/segment/", rounds.segment, name="round-segment"),
    path("studies/<slug:slug>/rounds/", rounds.round_list, name="round-list"),
    path("studies/<slug:slug>/rounds/new/", rounds.round_create, name="round-create"),
    path("studies/<slug:slug>/rounds/annomi/", rounds.annomi_import, name="round-annomi"),
    path("studies/<slug:slug>/rounds/<int:pk>/", rounds.round_detail, name="round-detail"),
    path("studies/<slug:slug>/rounds/<int:pk>/coders/<int:coder>/reassign/", rounds.round_reassign,
         name="round-reassign"),
    path("studies/<slug:slug>/rounds/<int:pk>/coders/<int:coder>/include/", rounds.round_include,
         name="round-include"),
    path(
        "studies/<slug:slug>/rounds/<int:pk>/assignments/<int:apk>/",
        rounds.assignment_detail,
        name="round-assignment",
    ),
    path(
        "studies/<slug:slug>/rounds/<int:pk>/assignments/<int:apk>/reopen/",
        rounds.assignment_reopen,
        name="round-assignment-reopen",
    ),
    path("studies/<slug:slug>/rounds/<int:pk>/adjudication/", rounds.adjudication_list, name="round-adjudication"),
    path(
        "studies/<slug:slug>/rounds/<int:pk>/adjudication/<int:tpk>/",
        rounds.adjudication_detail,
        name="round-adjudicate",
    ),
    path(
        "studies/<slug:slug>/rounds/<int:pk>/adjudication/<int:tpk>/start/",
        rounds.consensus_start,
        name="round-consensus-start",
    ),
    path(
        "studies/<slug:slug>/rounds/<int:pk>/adjudication/<int:tpk>/save/",
        rounds.consensus_save,
        name="round-consensus-save",
    ),
]

# The coder's workspace.
urlpatterns += [
    path("code/", coding.coder_queue, name="coder-queue"),
    path("code/<int:pk>/", coding.assignment_code, name="assignment-code"),
    path("code/<int:pk>/code/", coding.code_save, name="assignment-code-save"),
    path("code/<int:pk>/clear/", coding.code_clear, name="assignment-code-clear"),
    path("code/<int:pk>/global/", coding.global_save, name="assignment-global-save"),
    path("code/<int:pk>/undo/", coding.code_undo, name="assignment-undo"),
    path("code/<int:pk>/submit/", coding.assignment_submit, name="assignment-submit"),
]
