from __future__ import annotations

from django.urls import path

from . import calibration_views, views

urlpatterns = [
    path("studies/<slug:slug>/results/", views.dashboard, name="eval-dashboard"),
    path("studies/<slug:slug>/results/miti/", views.miti_results, name="eval-miti"),
    path("studies/<slug:slug>/results/reliability/", views.reliability, name="eval-reliability"),
    path("studies/<slug:slug>/results/reliability/codes/", views.reliability_codes, name="eval-reliability-codes"),
    path("studies/<slug:slug>/results/metrics/", views.metrics, name="eval-metrics"),
    path("studies/<slug:slug>/results/metrics/<int:run_id>/compute/", views.compute_metrics,
         name="eval-metrics-compute"),
    path("studies/<slug:slug>/results/machine/", views.machine, name="eval-machine"),
    path("studies/<slug:slug>/results/tables/", views.tables, name="eval-tables"),
    path("studies/<slug:slug>/results/tables/download.<str:fmt>", views.tables_download, name="eval-tables-download"),
    path("studies/<slug:slug>/results/charts/<str:name>.<str:fmt>", views.chart, name="eval-chart"),
    path("studies/<slug:slug>/results/report/", views.report, name="eval-report"),
    path("studies/<slug:slug>/results/exports/", views.export_list, name="eval-exports"),
    path("studies/<slug:slug>/results/exports/<int:pk>/", views.export_status, name="eval-export-status"),
    path("studies/<slug:slug>/results/exports/<int:pk>/download/", views.export_download,
         name="eval-export-download"),
    path("studies/<slug:slug>/calibration/", calibration_views.calibration_page, name="eval-calibration"),
    path("studies/<slug:slug>/calibration/standard/", calibration_views.standard_save, name="eval-calibration-standard"),
    path("studies/<slug:slug>/calibration/gold-sets/", calibration_views.gold_set_create, name="eval-gold-set-create"),
    path("studies/<slug:slug>/calibration/gold/", calibration_views.gold_mark, name="eval-gold-mark"),
    path("studies/<slug:slug>/calibration/rounds/", calibration_views.calibration_round_create,
         name="eval-calibration-round"),
    path("studies/<slug:slug>/calibration/drift.svg", calibration_views.drift_chart, name="eval-drift-chart"),
    path("studies/<slug:slug>/calibration/proficiency.csv", calibration_views.proficiency_csv,
         name="eval-proficiency-csv"),
    path("studies/<slug:slug>/calibration/drift.csv", calibration_views.drift_csv, name="eval-drift-csv"),
]
