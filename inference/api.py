"""Machine API of the inference app (DRF, thin): the model registry and a study's generation runs.

Reads go through ``inference.queries`` (the pages' helpers), writes through ``inference.actions``.
Runs are coordinator-only: an outsider gets 404, a coder of the study 403.
"""

from __future__ import annotations

from dataclasses import asdict

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.accounts.api import ApiView, StudyScopedView, choice_param
from annotation.accounts.validation import CheckedJSONParser

from . import actions, queries
from . import serializers as s
from .models import GenerationItem, GenerationRun


def run_payload(run: GenerationRun) -> dict:
    """A run with its live progress (the numbers the run page's progress bar shows)."""
    progress = queries.run_progress(run)
    run.progress = {**asdict(progress), "percent": progress.percent}
    return s.RunSerializer(run).data


class ModelListView(ApiView):
    serializer_class = s.RegisteredModelSerializer
    parser_classes = [CheckedJSONParser]

    @extend_schema(responses=s.RegisteredModelSerializer(many=True), summary="Registered models (coordinators, staff)")
    def get(self, request: Request) -> Response:
        return self.paginated(queries.models_for(request.user).order_by("name", "id"), s.RegisteredModelSerializer)

    @extend_schema(request=s.ModelRegisterSerializer, responses={201: s.RegisteredModelSerializer},
                   summary="Register a model (checked: paths, chat template, server URL)")
    def post(self, request: Request) -> Response:
        queries.models_for(request.user)  # the permission, as on the page
        data = self.valid(s.ModelRegisterSerializer)
        model = actions.register_model(created_by=request.user, **data)
        return Response(s.RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(ApiView):
    @extend_schema(responses=s.RegisteredModelSerializer, summary="A registered model")
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.RegisteredModelSerializer(queries.model_for(request.user, pk)).data)


class RunListView(StudyScopedView):
    serializer_class = s.RunSerializer
    parser_classes = [CheckedJSONParser]

    @extend_schema(responses=s.RunSerializer(many=True), summary="The study's generation runs with progress")
    def get(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(queries.runs_for(request.user, self.get_study()).order_by("-created_at", "-id"))
        return self.get_paginated_response([run_payload(run) for run in page])

    @extend_schema(request=s.RunStartSerializer, responses={201: s.RunSerializer},
                   summary="Start a run: one item per round of the split, chunks enqueued for the workers")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = self.valid(s.RunStartSerializer)
        try:
            model = queries.model_for(request.user, data["model"])
        except Http404 as exc:  # a missing model is a bad field here, not a missing URL
            raise exceptions.ValidationError({"model": [f"No registered model with id {data['model']}."]}) from exc
        run = actions.start_run(
            study, model, split=data["split"], chunk_size=data["chunk_size"], created_by=request.user
        )
        return Response(run_payload(run), status=status.HTTP_201_CREATED)


class RunDetailView(ApiView):
    @extend_schema(responses=s.RunSerializer, summary="A run's status and progress (poll this)")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        return Response(run_payload(queries.run_for(request.user, slug, pk)))


class RunCancelView(ApiView):
    @extend_schema(request=None, responses=s.RunChangeSerializer, summary="Cancel a queued or running run")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        run = queries.run_for(request.user, slug, pk)
        changed = actions.cancel_run(run)
        return Response({"changed": changed, "enqueued": 0, "run": run_payload(run)})


class RunResumeView(ApiView):
    parser_classes = [CheckedJSONParser]

    @extend_schema(request=s.ResumeSerializer, responses=s.RunChangeSerializer,
                   summary="Resume: re-enqueue pending (and stale) items, optionally the failed ones")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        run = queries.run_for(request.user, slug, pk)
        data = self.valid(s.ResumeSerializer, data=request.data or {})
        enqueued = actions.resume_run(run, retry_failed=data["retry_failed"])
        run.refresh_from_db()
        return Response({"changed": enqueued > 0, "enqueued": enqueued, "run": run_payload(run)})


class RunItemsView(ApiView):
    serializer_class = s.ItemSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=GenerationItem.Status.values, required=False)],
        responses=s.ItemSerializer(many=True), summary="A run's items (one per round), in dialogue and round order",
    )
    def get(self, request: Request, slug: str, pk: int) -> Response:
        run = queries.run_for(request.user, slug, pk)
        wanted = choice_param(request, "status", GenerationItem.Status.values)
        return self.paginated(queries.run_items(run, wanted), s.ItemSerializer)


class ItemRetryView(ApiView):
    @extend_schema(request=None, responses=s.ItemSerializer, summary="Send one failed item again")
    def post(self, request: Request, slug: str, pk: int, item_id: int) -> Response:
        run = queries.run_for(request.user, slug, pk)
        item = queries.item_for(run, item_id)
        actions.retry_item(item)
        item.refresh_from_db()
        return Response(s.ItemSerializer(item).data)
