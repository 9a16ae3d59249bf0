"""Machine API of the annotation app (DRF, thin): parse with a serializer → one action or query → respond.

The views stand on the API's ground floor, ``annotation.accounts.api`` (``ApiView``,
``StudyScopedView``: one error body, pagination on every list, the error responses documented on
every operation). Permissions are the pages' permissions because both go through
``annotation.queries``: an outsider gets 404, a member without the needed role 403.
"""

from __future__ import annotations

from django.db.models import Count
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from . import actions, miti, queries
from . import serializers as s
from .accounts.api import ApiView, StudyScopedView, choice_param
from .accounts.validation import CheckedFormParser, CheckedJSONParser, CheckedMultiPartParser
from .actions import coding
from .models import Assignment, Dialogue, Study, TranscriptSource
from .queries import coding as coding_queries

# --- studies and members ---------------------------------------------------------------------------------------


class StudyListView(ApiView):
    serializer_class = s.StudySerializer

    @extend_schema(responses=s.StudySerializer(many=True), summary="Studies you belong to (all, for staff)")
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(queries.studies_for(request.user).order_by("name", "id"))
        roles = {study.pk: queries.role_in(request.user, study) for study in page}
        data = s.StudySerializer(page, many=True, context={"roles": roles}).data
        return self.get_paginated_response(data)

    @extend_schema(request=s.StudyCreateSerializer, responses={201: s.StudyDetailSerializer},
                   summary="Create a study (you become its coordinator)")
    def post(self, request: Request) -> Response:
        if not request.user.has_perm("annotation.add_study"):
            raise exceptions.PermissionDenied("You may not create studies; ask a site admin.")
        study = actions.create_study(created_by=request.user, **self.valid(s.StudyCreateSerializer))
        return Response(_study_detail(request, study), status=status.HTTP_201_CREATED)


def _study_detail(request: Request, study: Study) -> dict:
    role = queries.role_in(request.user, study)
    coordinator = role == queries.COORDINATOR
    payload = s.StudySerializer(study, context={"roles": {study.pk: role}}).data
    payload["counts"] = queries.study_with_counts(study) if coordinator else None
    payload["split_info"] = study.split_info if coordinator else None
    return payload


class StudyDetailView(StudyScopedView):
    study_role = None

    @extend_schema(responses=s.StudyDetailSerializer, summary="A study (counts for coordinators)")
    def get(self, request: Request, slug: str) -> Response:
        return Response(_study_detail(request, self.get_study()))


class MemberListView(StudyScopedView):
    serializer_class = s.MembershipSerializer

    @extend_schema(responses=s.MembershipSerializer(many=True), summary="Members and their roles")
    def get(self, request: Request, slug: str) -> Response:
        return self.paginated(queries.members_of(self.get_study()), s.MembershipSerializer)

    @extend_schema(request=s.MembershipWriteSerializer, responses={201: s.MembershipSerializer},
                   summary="Add a member or change their role")
    def post(self, request: Request, slug: str) -> Response:
        data = self.valid(s.MembershipWriteSerializer)
        membership = actions.set_membership(self.get_study(), data["username"], data["role"])
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(StudyScopedView):
    @extend_schema(request=None, responses={204: None}, summary="Remove a member")
    def delete(self, request: Request, slug: str, username: str) -> Response:
        actions.remove_membership(self.get_study(), username)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- dialogues, imports, splits ------------------------------------------------------------------------------


class DialogueListView(StudyScopedView):
    serializer_class = s.DialogueSerializer

    @extend_schema(
        parameters=[OpenApiParameter("split", str, enum=Dialogue.Split.values, required=False)],
        responses=s.DialogueSerializer(many=True), summary="Dialogues of the study (coordinators)",
    )
    def get(self, request: Request, slug: str) -> Response:
        qs = queries.dialogues_for(request.user, self.get_study()).select_related("duplicate_of").order_by("id")
        split = choice_param(request, "split", Dialogue.Split.values)
        if split:
            qs = qs.filter(split=split)
        return self.paginated(qs, s.DialogueSerializer)


class DialogueDetailView(StudyScopedView):
    @extend_schema(responses=s.DialogueDetailSerializer, summary="A dialogue with its turns")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        dialogue = queries.dialogues_for(request.user, self.get_study()).filter(pk=pk).first()
        if dialogue is None:
            raise Http404("No such dialogue.")
        return Response(s.DialogueDetailSerializer(dialogue).data)


class ImportListView(StudyScopedView):
    parser_classes = [CheckedMultiPartParser, CheckedFormParser]
    serializer_class = s.ImportBatchSerializer

    @extend_schema(responses=s.ImportBatchSerializer(many=True), summary="Past imports of the study")
    def get(self, request: Request, slug: str) -> Response:
        imports = self.get_study().imports.select_related("study").order_by("-created_at", "-id")
        return self.paginated(imports, s.ImportBatchSerializer)

    @extend_schema(request={"multipart/form-data": s.ImportRequestSerializer}, responses={202: s.ImportBatchSerializer},
                   summary="Queue a dialogue file's import (all or nothing, on a worker); poll status_url")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        serializer = s.ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        batch = actions.request_import(
            study, upload=upload, filename=upload.name, fmt=data["format"] or None, split=data["split"] or None,
            options=serializer.import_options(), created_by=request.user,
        )
        body = s.ImportBatchSerializer(batch).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class ImportDetailView(StudyScopedView):
    @extend_schema(responses=s.ImportBatchSerializer,
                   summary="An import's status: queued, running (progress), done (counts, warnings) or failed (errors)")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        return Response(s.ImportBatchSerializer(queries.import_batch_for(request.user, self.get_study(), pk)).data)


class SplitView(StudyScopedView):
    parser_classes = [CheckedJSONParser]

    @extend_schema(request=s.SplitRequestSerializer, responses=s.SplitResultSerializer,
                   summary="Split dialogues into train/test (random with a seed, or by external ids)")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = self.valid(s.SplitRequestSerializer)
        if data["mode"] == "random":
            counts = actions.split_randomly(study, n_test=data["n_test"], n_train=data.get("n_train"), seed=data["seed"])
        else:
            moved = actions.split_by_ids(study, split=data["split"], external_ids=data["external_ids"])
            counts = {data["split"]: moved}
        return Response({"counts": counts})


# --- transcript sources, rounds, assignments (coordinators) ---------------------------------------------------------


def _source_rows(study: Study) -> list[dict]:
    sources = TranscriptSource.objects.filter(study=study).annotate(transcript_count=Count("transcripts")).order_by("id")
    return [
        {"id": src.pk, "kind": src.kind, "label": src.label, "generation_run_id": src.generation_run_id,
         "transcript_count": src.transcript_count, "created_at": src.created_at}
        for src in sources
    ]


class SourceListView(StudyScopedView):
    serializer_class = s.SourceSerializer

    @extend_schema(responses=s.SourceSerializer(many=True), summary="Transcript sources: the reference and one per run")
    def get(self, request: Request, slug: str) -> Response:
        return self.paginated(_source_rows(self.get_study()), s.SourceSerializer)


class ReferenceSourceView(StudyScopedView):
    @extend_schema(request=None, responses={200: s.SourceSerializer},
                   summary="Create (or complete) the reference transcripts of the test split; idempotent")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        source = actions.ensure_reference_source(study)
        row = next(r for r in _source_rows(study) if r["id"] == source.pk)
        return Response(s.SourceSerializer(row).data)


def _round_progress(study: Study, round_ids) -> dict[int, dict[str, int]]:
    """Coding assignments per status of each round, from the one grouped progress query."""
    rows = queries.coding_progress(study, round_ids=round_ids)
    return {round_id: total.by_status() for round_id, total in queries.totals_by_round(rows).items()}


class RoundListView(StudyScopedView):
    serializer_class = s.CodingRoundSerializer

    @extend_schema(responses=s.CodingRoundSerializer(many=True), summary="Coding rounds with progress")
    def get(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        page = self.paginate_queryset(study.rounds.prefetch_related("sources", "coders").order_by("-created_at", "-id"))
        context = {"progress": _round_progress(study, [r.pk for r in page])}
        return self.get_paginated_response(s.CodingRoundSerializer(page, many=True, context=context).data)

    @extend_schema(request=s.CodingRoundCreateSerializer, responses={201: s.CodingRoundSerializer},
                   summary="Create a coding round: balanced, shuffled, seeded queues with the given overlap")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = self.valid(s.CodingRoundCreateSerializer)
        sources = list(TranscriptSource.objects.filter(study=study, pk__in=data["sources"]))
        missing = sorted(set(data["sources"]) - {src.pk for src in sources})
        if missing:
            raise exceptions.ValidationError({"sources": [f"Not sources of this study: {missing}."]})
        coders = s.usernames_to_users(data["coders"])
        coding_round = actions.create_coding_round(
            study, name=data["name"], sources=sources, coders=coders, overlap=data["overlap"], seed=data.get("seed"),
            per_overlap=data["per_overlap"], created_by=request.user,
        )
        context = {"progress": _round_progress(study, [coding_round.pk])}
        return Response(s.CodingRoundSerializer(coding_round, context=context).data, status=status.HTTP_201_CREATED)


class RoundDetailView(StudyScopedView):
    @extend_schema(responses=s.CodingRoundSerializer, summary="A coding round with its progress")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        study = self.get_study()
        coding_round = queries.round_for(request.user, study, pk)
        context = {"progress": _round_progress(study, [coding_round.pk])}
        return Response(s.CodingRoundSerializer(coding_round, context=context).data)


class RoundAssignmentsView(StudyScopedView):
    serializer_class = s.AssignmentSerializer

    @extend_schema(
        parameters=[OpenApiParameter("coder", str, required=False, description="Only this coder's assignments."),
                    OpenApiParameter("status", str, enum=Assignment.Status.values, required=False)],
        responses=s.AssignmentSerializer(many=True), summary="Assignments of a round (coordinators; not blinded)",
    )
    def get(self, request: Request, slug: str, pk: int) -> Response:
        coding_round = queries.round_for(request.user, self.get_study(), pk)
        qs = (
            Assignment.objects.filter(coding_round=coding_round)
            .select_related("coder", "transcript", "transcript__source").order_by("coder__username", "position", "id")
        )
        if request.query_params.get("coder"):
            qs = qs.filter(coder__username=request.query_params["coder"])
        wanted = choice_param(request, "status", Assignment.Status.values)
        if wanted:
            qs = qs.filter(status=wanted)
        return self.paginated(qs, s.AssignmentSerializer)


class AssignmentReopenView(StudyScopedView):
    @extend_schema(request=None, responses=s.AssignmentSerializer, summary="Reopen submitted work (bumps its version)")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        study = self.get_study()
        assignment = (
            Assignment.objects.select_related("coder", "transcript", "transcript__source")
            .filter(pk=pk, coding_round__study=study).first()
        )
        if assignment is None:
            raise Http404("No such assignment.")
        assignment = actions.reopen_assignment(assignment, actor=request.user)
        return Response(s.AssignmentSerializer(assignment).data)


# --- a coder's own queue and workspace (blinded) --------------------------------------------------------------------


class QueueView(ApiView):
    serializer_class = s.QueueItemSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Assignment.Status.values, required=False)],
        responses=s.QueueItemSerializer(many=True), summary="Your coding queue, in order (blinded)",
    )
    def get(self, request: Request) -> Response:
        qs = queries.assignments_for(request.user)
        wanted = choice_param(request, "status", Assignment.Status.values)
        if wanted:
            qs = qs.filter(status=wanted)
        page = self.paginate_queryset(qs)
        progress = {pk: _progress(p) for pk, p in coding_queries.progress_for(page).items()}
        return self.get_paginated_response(s.QueueItemSerializer(page, many=True, context={"progress": progress}).data)


def _progress(progress: coding_queries.Progress) -> dict:
    return {"coded": progress.coded, "total": progress.total, "globals_set": progress.globals_set,
            "globals_total": progress.globals_total, "percent": progress.percent, "complete": progress.complete}


def _tally(tally: miti.VolleyTally) -> dict:
    return {"counts": {k: v for k, v in tally.counts.items() if v}, "merges": tally.merges}


def workspace_payload(assignment: Assignment) -> dict:
    """The coder's view of an assignment, from the coding page's own read (``coding_sheet``).

    Texts, the coder's own codes, globals, tallies and progress; no source, model or run.
    """
    sheet = coding_queries.coding_sheet(assignment)
    coding_round = assignment.coding_round
    return {
        "id": assignment.pk, "study": coding_round.study.slug, "change_goal": coding_round.study.change_goal,
        "blind_code": assignment.transcript.blind_code, "status": assignment.status, "version": assignment.version,
        "editable": coding_queries.is_editable(assignment), "globals_rated": coding_round.globals_rated,
        "instrument_version": coding_round.instrument_version,
        "volleys": [
            {"id": v.id, "number": v.number, "client_context": v.client_context, "tally": _tally(v.tally),
             "utterances": [{"id": u.id, "number": u.number, "text": u.text, "code": u.code} for u in v.utterances]}
            for v in sheet.volleys
        ],
        "globals": sheet.globals, "progress": _progress(sheet.progress),
    }


class WorkspaceView(ApiView):
    @extend_schema(responses=s.WorkspaceSerializer, summary="One of your assignments with its transcript and your codes")
    def get(self, request: Request, pk: int) -> Response:
        assignment = queries.assignment_for(request.user, pk)
        return Response(s.WorkspaceSerializer(workspace_payload(assignment)).data)


_CONFLICT = OpenApiResponse(s.ConflictSerializer, description="Stale version (changed elsewhere) or read-only work.")


class CodingWriteView(ApiView):
    """Base of the coder's writes: each is one action guarded by the assignment's version.

    A stale version answers 409 with ``current_version`` (never a silent overwrite); submitted work
    answers 409 too, as the page does.
    """

    parser_classes = [CheckedJSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, coding.StaleVersion | coding.AssignmentReadOnly):
            current = getattr(exc, "current_version", None)
            if current is None:
                current = Assignment.objects.filter(pk=self.kwargs.get("pk")).values_list("version", flat=True).first()
            return Response(
                {"detail": str(exc), "errors": {"version": [str(exc)]}, "current_version": current or 0},
                status=status.HTTP_409_CONFLICT,
            )
        return super().handle_exception(exc)

    def saved(self, assignment: Assignment, result: coding.SaveResult | None = None) -> Response:
        body = {"id": assignment.pk, "status": assignment.status, "version": assignment.version,
                "progress": _progress(coding_queries.assignment_progress(assignment)), "volley": None, "tally": None}
        if result is not None and result.tally is not None:
            body["volley"] = coding_queries.volley_number(result.volley_id)  # its number, as the workspace shows it
            body["tally"] = _tally(result.tally)
        return Response(s.SavedSerializer(body).data)


class CodeWriteView(CodingWriteView):
    @extend_schema(request=s.CodeWriteSerializer, responses={200: s.SavedSerializer, 409: _CONFLICT},
                   summary="Code one utterance (a MITI code, NONE, or null to clear)")
    def post(self, request: Request, pk: int) -> Response:
        assignment = queries.assignment_for(request.user, pk)
        data = self.valid(s.CodeWriteSerializer)
        # The coder names the utterance by its number in the transcript (the workspace's id), never a database id.
        utterance = coding_queries.utterance_pk(assignment, data["utterance"])
        if data["code"] is None:
            result = coding.clear_code(assignment, utterance_id=utterance, version=data["version"], actor=request.user)
        else:
            result = coding.save_code(
                assignment, utterance_id=utterance, code=data["code"], version=data["version"], actor=request.user
            )
        return self.saved(assignment, result)


class GlobalWriteView(CodingWriteView):
    @extend_schema(request=s.GlobalWriteSerializer, responses={200: s.SavedSerializer, 409: _CONFLICT},
                   summary="Rate one global scale 1–5 (null clears it)")
    def post(self, request: Request, pk: int) -> Response:
        assignment = queries.assignment_for(request.user, pk)
        data = self.valid(s.GlobalWriteSerializer)
        result = coding.set_global(
            assignment, scale=data["scale"], value=data["value"], version=data["version"], actor=request.user
        )
        return self.saved(assignment, result)


class UndoView(CodingWriteView):
    @extend_schema(request=s.VersionSerializer, responses={200: s.SavedSerializer, 409: _CONFLICT},
                   summary="Undo your last code or global change")
    def post(self, request: Request, pk: int) -> Response:
        assignment = queries.assignment_for(request.user, pk)
        result = coding.undo_last(assignment, version=self.valid(s.VersionSerializer)["version"], actor=request.user)
        return self.saved(assignment, result)


class SubmitView(CodingWriteView):
    @extend_schema(request=s.VersionSerializer, responses={200: s.SavedSerializer, 409: _CONFLICT},
                   summary="Submit: refused (400, saying what is missing) until everything is coded and rated")
    def post(self, request: Request, pk: int) -> Response:
        assignment = queries.assignment_for(request.user, pk)
        coding.submit_assignment(assignment, version=self.valid(s.VersionSerializer)["version"], actor=request.user)
        return self.saved(assignment)
