"""The machine API under /api/: wiring only. Each app's ``api`` module holds its views.

The schema is at /api/schema/ and Swagger UI at /api/docs/ (served from drf-spectacular-sidecar's
static files, no CDN). Any other path under /api/ answers a JSON 404 in the API's error shape.
"""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation import api as annotation_api
from annotation.accounts import api as accounts_api
from evaluation import api as evaluation_api
from evaluation import calibration_api
from inference import api as inference_api
from inference.coders import api as machine_coders_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's initialiser as a script file: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # the current user and personal tokens
    path("me/", accounts_api.MeView.as_view(), name="api-me"),
    path("tokens/", accounts_api.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/", accounts_api.TokenDetailView.as_view(), name="api-token"),
    # studies, members, dialogues, imports
    path("studies/", annotation_api.StudyListView.as_view(), name="api-studies"),
    path("studies/<slug:slug>/", annotation_api.StudyDetailView.as_view(), name="api-study"),
    path("studies/<slug:slug>/members/", annotation_api.MemberListView.as_view(), name="api-members"),
    path("studies/<slug:slug>/members/<str:username>/", annotation_api.MemberDetailView.as_view(), name="api-member"),
    path("studies/<slug:slug>/dialogues/", annotation_api.DialogueListView.as_view(), name="api-dialogues"),
    path("studies/<slug:slug>/dialogues/<int:pk>/", annotation_api.DialogueDetailView.as_view(), name="api-dialogue"),
    path("studies/<slug:slug>/imports/", annotation_api.ImportListView.as_view(), name="api-imports"),
    path("studies/<slug:slug>/imports/<int:pk>/", annotation_api.ImportDetailView.as_view(), name="api-import"),
    path("studies/<slug:slug>/split/", annotation_api.SplitView.as_view(), name="api-split"),
    # transcripts, coding rounds, assignments (coordinators)
    path("studies/<slug:slug>/sources/", annotation_api.SourceListView.as_view(), name="api-sources"),
    path("studies/<slug:slug>/sources/reference/", annotation_api.ReferenceSourceView.as_view(),
         name="api-reference-source"),
    path("studies/<slug:slug>/rounds/", annotation_api.RoundListView.as_view(), name="api-rounds"),
    path("studies/<slug:slug>/rounds/<int:pk>/", annotation_api.RoundDetailView.as_view(), name="api-round"),
    path("studies/<slug:slug>/rounds/<int:pk>/assignments/", annotation_api.RoundAssignmentsView.as_view(),
         name="api-round-assignments"),
    path("studies/<slug:slug>/assignments/<int:pk>/reopen/", annotation_api.AssignmentReopenView.as_view(),
         name="api-assignment-reopen"),
    # model registry and generation runs
    path("models/", inference_api.ModelListView.as_view(), name="api-models"),
    path("models/<int:pk>/", inference_api.ModelDetailView.as_view(), name="api-model"),
    path("studies/<slug:slug>/runs/", inference_api.RunListView.as_view(), name="api-runs"),
    path("studies/<slug:slug>/machine-coders/", machine_coders_api.MachineCoderListView.as_view(),
         name="api-machine-coders"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/", machine_coders_api.MachineCoderDetailView.as_view(),
         name="api-machine-coder"),
    path("studies/<slug:slug>/machine-coders/<int:pk>/runs/", machine_coders_api.MachineCodingRunListView.as_view(),
         name="api-machine-coder-runs"),
    path("studies/<slug:slug>/runs/<int:pk>/", inference_api.RunDetailView.as_view(), name="api-run"),
    path("studies/<slug:slug>/runs/<int:pk>/cancel/", inference_api.RunCancelView.as_view(), name="api-run-cancel"),
    path("studies/<slug:slug>/runs/<int:pk>/resume/", inference_api.RunResumeView.as_view(), name="api-run-resume"),
    path("studies/<slug:slug>/runs/<int:pk>/items/", inference_api.RunItemsView.as_view(), name="api-run-items"),
    path("studies/<slug:slug>/runs/<int:pk>/items/<int:item_id>/retry/", inference_api.ItemRetryView.as_view(),
         name="api-item-retry"),
    # results and exports (coordinators)
    path("studies/<slug:slug>/progress/", evaluation_api.ProgressView.as_view(), name="api-progress"),
    # gold standards, calibration, proficiency, drift (coordinators)
    path("studies/<slug:slug>/gold-sets/", calibration_api.GoldSetListView.as_view(), name="api-gold-sets"),
    path("studies/<slug:slug>/gold-sets/<int:pk>/golds/", calibration_api.GoldMarkView.as_view(), name="api-gold-mark"),
    path("studies/<slug:slug>/calibration/results/", calibration_api.CalibrationResultsView.as_view(),
         name="api-calibration-results"),
    path("studies/<slug:slug>/proficiency/", calibration_api.ProficiencyView.as_view(), name="api-proficiency"),
    path("studies/<slug:slug>/drift/", calibration_api.DriftView.as_view(), name="api-drift"),
    path("studies/<slug:slug>/summaries/", evaluation_api.SummaryListView.as_view(), name="api-summaries"),
    path("studies/<slug:slug>/aggregates/", evaluation_api.AggregatesView.as_view(), name="api-aggregates"),
    path("studies/<slug:slug>/reliability/", evaluation_api.ReliabilityView.as_view(), name="api-reliability"),
    path("studies/<slug:slug>/metrics/", evaluation_api.MetricListView.as_view(), name="api-metrics"),
    path("studies/<slug:slug>/runs/<int:pk>/metrics/", evaluation_api.RunMetricsView.as_view(), name="api-run-metrics"),
    path("studies/<slug:slug>/exports/", evaluation_api.ExportListView.as_view(), name="api-exports"),
    path("studies/<slug:slug>/exports/<int:pk>/", evaluation_api.ExportDetailView.as_view(), name="api-export"),
    path("studies/<slug:slug>/exports/<int:pk>/download/", evaluation_api.ExportDownloadView.as_view(),
         name="api-export-download"),
    # a coder's own queue and workspace (blinded)
    path("queue/", annotation_api.QueueView.as_view(), name="api-queue"),
    path("assignments/<int:pk>/", annotation_api.WorkspaceView.as_view(), name="api-assignment"),
    path("assignments/<int:pk>/codes/", annotation_api.CodeWriteView.as_view(), name="api-assignment-code"),
    path("assignments/<int:pk>/globals/", annotation_api.GlobalWriteView.as_view(), name="api-assignment-global"),
    path("assignments/<int:pk>/undo/", annotation_api.UndoView.as_view(), name="api-assignment-undo"),
    path("assignments/<int:pk>/submit/", annotation_api.SubmitView.as_view(), name="api-assignment-submit"),
]

# Last: anything else under /api/ is a JSON 404, not Django's HTML page.
urlpatterns.append(re_path(r"^.*$", accounts_api.not_found))
