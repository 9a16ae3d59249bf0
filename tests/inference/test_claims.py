"""The claim kernel's hand-off to Celery: tasks are sent by name, once per argument list, after commit.

(Claiming itself — open, stale and own rows, both SQL paths, late writers — is exercised through the
generation items in ``test_runs.py``/``test_worker_faults.py`` and the transformation items in
``test_recipe_jobs.py``.)
"""

from __future__ import annotations

import pytest
from django.db import transaction

from annotation import claims


@pytest.fixture
def eager():
    """Celery's eager mode for one test (conf values are restored by hand: they are not attributes)."""
    from celery import current_app

    previous = current_app.conf.task_always_eager, current_app.conf.task_eager_propagates
    current_app.conf.task_always_eager, current_app.conf.task_eager_propagates = True, True
    try:
        yield current_app
    finally:
        current_app.conf.task_always_eager, current_app.conf.task_eager_propagates = previous


def test_a_task_is_sent_by_its_name_and_runs_here_in_eager_mode(eager):
    result = claims.send_task("mi_platform.ping", [41])
    assert result.get(timeout=5) == 42


@pytest.mark.django_db
def test_sends_wait_for_the_commit_and_happen_once_per_argument_list(monkeypatch, django_capture_on_commit_callbacks):
    sent: list[tuple[str, list, str | None]] = []
    monkeypatch.setattr(claims, "send_task", lambda name, args, queue=None: sent.append((name, args, queue)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            claims.send_after_commit("inference.tasks.run_chunk", ([7, chunk] for chunk in claims.chunked([1, 2, 3], 2)),
                                     queue="cpu")
            assert sent == []  # nothing leaves before the commit
    assert len(callbacks) == 1
    assert sent == [("inference.tasks.run_chunk", [7, [1, 2]], "cpu"), ("inference.tasks.run_chunk", [7, [3]], "cpu")]


@pytest.mark.django_db
def test_a_rolled_back_transaction_sends_nothing(monkeypatch, django_capture_on_commit_callbacks):
    sent: list[str] = []
    monkeypatch.setattr(claims, "send_task", lambda name, args, queue=None: sent.append(name))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            claims.send_after_commit("evaluation.run_export", [[1]])
            raise RuntimeError("refused")
    assert callbacks == [] and sent == []
    with django_capture_on_commit_callbacks() as callbacks:
        claims.send_after_commit("evaluation.run_export", [])  # nothing to send: no callback at all
    assert callbacks == []
