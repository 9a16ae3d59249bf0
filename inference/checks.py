"""System checks for the model registry (inference.E001 …): caught at startup, not at the first run."""

from __future__ import annotations

from django.core.checks import Error, Tags, Warning, register


@register(Tags.database)
def check_registered_models(app_configs, databases=None, **kwargs):
    """Runs where checks may touch the database (``check --database default``, ``migrate``)."""
    if not databases:
        return []
    from django.db import connection
    from django.db.utils import DatabaseError

    from .models import RegisteredModel
    from .registry import problems_for

    issues = []
    try:
        if RegisteredModel._meta.db_table not in connection.introspection.table_names():
            return []
        models = list(RegisteredModel.objects.all())
    except DatabaseError:  # no database yet (first migrate): nothing to check
        return []
    for model in models:
        for problem in problems_for(model, deep=False):
            cls = Error if problem.fatal else Warning
            issues.append(cls(f"Model '{model.name}': {problem.message}", hint=problem.hint, id=problem.code))
    return issues
