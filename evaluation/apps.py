from __future__ import annotations

from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The proficiency gate of round creation asks annotation's seam; the numbers are computed here
        # (annotation may not import evaluation: docs/architecture.md).
        from annotation import proficiency

        from . import calibration

        proficiency.register_assessor(calibration.assess)
        proficiency.register_agreement(calibration.feedback_agreement)
