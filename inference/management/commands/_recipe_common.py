"""Shared argument handling of the recipe commands (transform_dialogues, export_training_data, finetune)."""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from annotation.models import Study
from inference.models import RegisteredModel


def study_named(slug: str) -> Study:
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        raise CommandError(f"No study with the slug '{slug}'.")
    return study


def model_named(name: str | None) -> RegisteredModel | None:
    if not name:
        return None
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        raise CommandError(f"No registered model named '{name}'.")
    return model


def user_named(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named '{username}'.")
    return user


@contextmanager
def in_this_process(enabled: bool):
    """With ``enabled``, tasks sent inside the block run here and now (Celery eager mode), so a
    command works without a worker; the task code is the same."""
    from celery import current_app as app

    if not enabled:
        yield
        return
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
