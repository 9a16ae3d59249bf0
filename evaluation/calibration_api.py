"""Machine API of calibration (DRF, thin; docs/calibration.md): gold sets, marking gold, calibration
results, proficiency and drift series. Coordinators only (a coder of the study gets 403, anybody else
404); writes go through ``annotation.actions``; the numbers are ``evaluation.calibration``'s, the same
the calibration page shows.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import actions as annotation_actions
from annotation.accounts.api import StudyScopedView
from annotation.models import Assignment, GoldSet

from . import calibration
from . import gold_agreement as ga
from .api import finite


class GoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    blind_code = serializers.CharField()
    version = serializers.IntegerField()
    origin = serializers.CharField()
    globals_rated = serializers.BooleanField()
    marked_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    scores = serializers.DictField(child=serializers.FloatField(allow_null=True))


class GoldSetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    site_wide = serializers.BooleanField()
    description = serializers.CharField(allow_blank=True)
    golds = GoldSerializer(many=True, help_text="The latest version of each gold transcript.")


class GoldSetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    site_wide = serializers.BooleanField(default=False, help_text="Site-wide set (staff only).")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class MarkGoldSerializer(serializers.Serializer):
    assignment = serializers.IntegerField(help_text="A submitted consensus coding, or an imported labelled coding.")


class StatSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class CalibrationResultSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    coder = serializers.CharField()
    blind_code = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    seeded = serializers.BooleanField()
    utterances = serializers.IntegerField()
    percent_agreement = serializers.FloatField(allow_null=True)
    kappa = StatSerializer()
    alpha = StatSerializer()


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)


class CodeKappaSerializer(serializers.Serializer):
    code = serializers.CharField()
    covered = serializers.BooleanField()
    n_gold = serializers.IntegerField()
    n_coder = serializers.IntegerField()
    kappa = StatSerializer()


class ScoreAgreementSerializer(serializers.Serializer):
    key = serializers.CharField()
    coder_mean = serializers.FloatField(allow_null=True)
    gold_mean = serializers.FloatField(allow_null=True)
    mean_abs_difference = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    icc = StatSerializer()


class ProficiencySerializer(serializers.Serializer):
    coder = serializers.CharField()
    calibration_codings = serializers.IntegerField()
    utterances = serializers.IntegerField()
    percent_agreement = serializers.FloatField(allow_null=True)
    kappa = StatSerializer()
    alpha = StatSerializer()
    globals_within_one = serializers.FloatField(allow_null=True)
    globals_reason = serializers.CharField(allow_blank=True)
    covered_codes = serializers.ListField(child=serializers.CharField())
    per_code = CodeKappaSerializer(many=True)
    scores = ScoreAgreementSerializer(many=True)
    checks = CheckSerializer(many=True)
    eligible = serializers.BooleanField()


class DriftPointSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    blind_code = serializers.CharField()
    kappa = StatSerializer()
    rolling_kappa = StatSerializer()
    window_full = serializers.BooleanField()


class DriftSeriesSerializer(serializers.Serializer):
    coder = serializers.CharField()
    threshold = serializers.FloatField()
    window = serializers.IntegerField()
    alert = serializers.BooleanField()
    points = DriftPointSerializer(many=True)


def _kappa(result) -> dict:
    return {"value": result.kappa, "status": result.status, "reason": result.reason}


def _alpha(result) -> dict:
    return {"value": result.alpha, "status": result.status, "reason": result.reason}


def _icc(result) -> dict:
    return {"value": result.icc2_1, "status": "ok" if result.icc2_1 is not None else result.status,
            "reason": result.single.reason or result.reason}


def _gold_sets(study):
    return GoldSet.objects.filter(Q(study=study) | Q(study__isnull=True))


def _gold_set_body(gold_set: GoldSet) -> dict:
    golds = annotation_actions.current_golds(gold_set)
    return {
        "id": gold_set.pk, "name": gold_set.name, "site_wide": gold_set.site_wide, "description": gold_set.description,
        "golds": [
            {"id": g.pk, "blind_code": g.transcript.blind_code, "version": g.version, "origin": g.origin,
             "globals_rated": g.globals_rated, "marked_by": g.marked_by, "created_at": g.created_at,
             "scores": finite({k: v for k, v in g.scores.items() if v is None or isinstance(v, int | float)})}
            for g in golds
        ],
    }


class GoldSetListView(StudyScopedView):
    @extend_schema(responses=GoldSetSerializer(many=True), summary="The study's and the site-wide gold sets")
    def get(self, request: Request, slug: str) -> Response:
        return self.paginated([_gold_set_body(g) for g in _gold_sets(self.get_study())], GoldSetSerializer)

    @extend_schema(request=GoldSetCreateSerializer, responses={201: GoldSetSerializer}, summary="Create a gold set")
    def post(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        data = GoldSetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gold_set = annotation_actions.create_gold_set(
            None if data.validated_data["site_wide"] else study, name=data.validated_data["name"],
            description=data.validated_data["description"], actor=request.user,
        )
        return Response(GoldSetSerializer(_gold_set_body(gold_set)).data, status=status.HTTP_201_CREATED)


class GoldMarkView(StudyScopedView):
    @extend_schema(request=MarkGoldSerializer, responses={201: GoldSerializer},
                   summary="Mark a submitted consensus or imported coding as gold (a new version if already gold)")
    def post(self, request: Request, slug: str, pk: int) -> Response:
        study = self.get_study()
        gold_set = _gold_sets(study).filter(pk=pk).first()
        if gold_set is None:
            raise Http404("No such gold set.")
        data = MarkGoldSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = Assignment.objects.filter(pk=data.validated_data["assignment"], coding_round__study=study).first()
        if assignment is None:
            raise Http404("No such assignment in this study.")
        g = annotation_actions.mark_gold(gold_set, assignment, actor=request.user)
        body = {"id": g.pk, "blind_code": g.transcript.blind_code, "version": g.version, "origin": g.origin,
                "globals_rated": g.globals_rated, "marked_by": g.marked_by, "created_at": g.created_at,
                "scores": finite(g.scores)}
        return Response(GoldSerializer(body).data, status=status.HTTP_201_CREATED)


class CalibrationResultsView(StudyScopedView):
    @extend_schema(responses=CalibrationResultSerializer(many=True),
                   summary="Every submitted coding of a gold transcript with its agreement with gold")
    def get(self, request: Request, slug: str) -> Response:
        study = self.get_study()
        comparisons = calibration.load_comparisons(study)
        names = dict(Assignment.objects.filter(pk__in=[c.assignment_id for c in comparisons])
                     .values_list("pk", "coder__username"))
        rows = []
        for c in sorted(comparisons, key=lambda c: c.assignment_id):
            kappa, alpha, percent = ga.utterance_agreement(c.codes)
            rows.append({"assignment": c.assignment_id, "coder": names[c.assignment_id], "blind_code": c.transcript,
                         "submitted_at": c.submitted_at, "seeded": c.seeded, "utterances": len(c.codes),
                         "percent_agreement": percent, "kappa": _kappa(kappa), "alpha": _alpha(alpha)})
        return self.paginated(finite(rows), CalibrationResultSerializer)


class ProficiencyView(StudyScopedView):
    @extend_schema(responses=ProficiencySerializer(many=True),
                   summary="Each coder's agreement with gold over their calibration codings, against the thresholds")
    def get(self, request: Request, slug: str) -> Response:
        result = calibration.study_calibration(self.get_study())
        rows = []
        for c, name in result.coders.items():
            p = result.proficiency[c]
            rows.append({
                "coder": name, "calibration_codings": p.n_codings, "utterances": p.n_utterances,
                "percent_agreement": p.percent_agreement, "kappa": _kappa(p.kappa), "alpha": _alpha(p.alpha),
                "globals_within_one": p.globals_within_one, "globals_reason": p.globals_reason,
                "covered_codes": p.covered_codes,
                "per_code": [{"code": k.code, "covered": k.covered, "n_gold": k.n_gold, "n_coder": k.n_coder,
                              "kappa": _kappa(k.kappa)} for k in p.per_code],
                "scores": [{"key": s.key, "coder_mean": s.coder_mean, "gold_mean": s.gold_mean,
                            "mean_abs_difference": s.mean_abs_difference, "n": s.n, "icc": _icc(s.icc)}
                           for s in p.scores],
                "checks": [{"name": k.name, "value": k.value, "threshold": k.threshold, "status": k.status,
                            "reason": k.reason} for k in p.checks],
                "eligible": p.eligible,
            })
        return self.paginated(finite(rows), ProficiencySerializer)


class DriftView(StudyScopedView):
    @extend_schema(responses=DriftSeriesSerializer(many=True),
                   summary="Each coder's agreement with seeded gold over time (rolling kappa) and the alert")
    def get(self, request: Request, slug: str) -> Response:
        result = calibration.study_calibration(self.get_study())
        rows = [
            {"coder": result.coders[c], "threshold": s.threshold, "window": s.window, "alert": s.alert,
             "points": [{"n": p.number, "submitted_at": p.submitted_at, "blind_code": p.transcript,
                         "kappa": _kappa(p.kappa), "rolling_kappa": _kappa(p.rolling), "window_full": p.window_full}
                        for p in s.points]}
            for c, s in result.drift.items()
        ]
        return self.paginated(finite(rows), DriftSeriesSerializer)
