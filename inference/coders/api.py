"""Machine API of machine coders (DRF, thin; coordinators of the study only: outsiders 404, coders 403).

    GET/POST /api/studies/<slug>/machine-coders/          list; register (classifier: training queued)
    GET      /api/studies/<slug>/machine-coders/<pk>/     provenance, status, validation, runs
    POST     /api/studies/<slug>/machine-coders/<pk>/runs/  code a round (``{"round": id}``)
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.accounts.api import StudyScopedView
from annotation.accounts.validation import CheckedJSONParser
from annotation.models import CodingRound

from ..models import RegisteredModel
from . import actions, queries
from .models import MachineCoder, MachineCodingRun


class MachineCodingRunSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="coding_round_id")

    class Meta:
        model = MachineCodingRun
        fields = ["id", "round", "status", "error", "created_at", "started_at", "finished_at"]


class MachineCoderSerializer(serializers.ModelSerializer):
    runs = MachineCodingRunSerializer(many=True, read_only=True)

    class Meta:
        model = MachineCoder
        fields = [
            "id", "name", "kind", "model", "training_round", "trained_with", "seed", "folds", "validation",
            "artefact_path", "status", "progress", "error", "created_at", "trained_at", "runs",
        ]


class RegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    kind = serializers.ChoiceField(choices=MachineCoder.Kind.values)
    training_round = serializers.IntegerField(required=False)
    model = serializers.IntegerField(required=False)
    codebook = serializers.CharField(required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(required=False, default=0)
    folds = serializers.IntegerField(required=False, default=5, min_value=2, max_value=20)


class StartSerializer(serializers.Serializer):
    round = serializers.IntegerField()


class MachineCoderListView(StudyScopedView):
    serializer_class = MachineCoderSerializer
    parser_classes = [CheckedJSONParser]

    @extend_schema(responses=MachineCoderSerializer(many=True), summary="A study's machine coders")
    def get(self, request: Request, slug: str) -> Response:
        return self.paginated(queries.coders_of(self.get_study()).order_by("name", "id"), MachineCoderSerializer)

    @extend_schema(request=RegisterSerializer, responses={201: MachineCoderSerializer},
                   summary="Register a machine coder (a classifier's training job is queued)")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = self.valid(RegisterSerializer)
        if data["kind"] == MachineCoder.Kind.CLASSIFIER:
            coding_round = CodingRound.objects.filter(study=study, pk=data.get("training_round")).first()
            if coding_round is None:
                raise exceptions.ValidationError({"training_round": ["A round of this study is required."]})
            coder = actions.register_classifier(study, name=data["name"], training_round=coding_round,
                                                seed=data["seed"], folds=data["folds"], created_by=request.user)
        else:
            model = RegisteredModel.objects.filter(pk=data.get("model")).first()
            if model is None:
                raise exceptions.ValidationError({"model": ["A registered model is required."]})
            coder = actions.register_llm_coder(study, name=data["name"], model=model, codebook=data["codebook"],
                                               created_by=request.user)
        return Response(MachineCoderSerializer(coder).data, status=status.HTTP_201_CREATED)


class MachineCoderDetailView(StudyScopedView):
    @extend_schema(responses=MachineCoderSerializer, summary="A machine coder: provenance, validation, runs")
    def get(self, request: Request, slug: str, pk: int) -> Response:
        return Response(MachineCoderSerializer(queries.coder_for(request.user, slug, pk)).data)


class MachineCodingRunListView(StudyScopedView):
    parser_classes = [CheckedJSONParser]

    @extend_schema(request=StartSerializer, responses={201: MachineCodingRunSerializer},
                   summary="Add the machine coder to a round and code it (chunks enqueued for the workers)")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        coder = queries.coder_for(request.user, slug, pk)
        data = self.valid(StartSerializer)
        coding_round = CodingRound.objects.filter(study=coder.study, pk=data["round"]).first()
        if coding_round is None:
            raise exceptions.ValidationError({"round": ["A round of this study is required."]})
        run = actions.start_coding_run(coder, coding_round, created_by=request.user)
        return Response(MachineCodingRunSerializer(run).data, status=status.HTTP_201_CREATED)
