"""Export jobs are claimed like generation chunks (``annotation.claims``): a job is taken once, a stale
claim is taken over only after ``MI_EXPORT_CLAIM_STALE_SECONDS``, and two deliveries never write the
same file — a writer whose claim was taken over leaves nothing behind."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from evaluation import actions, exports, tasks
from evaluation.models import ExportJob


@pytest.fixture
def export_dir(tmp_path, settings):
    settings.MI_EXPORT_DIR = tmp_path / "exports"
    return settings.MI_EXPORT_DIR


@pytest.fixture
def written(monkeypatch):
    """Every call of the file writer, by thread: the proof of "written once"."""
    calls: list[str] = []
    original = exports.write_export

    def counting(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(exports, "write_export", counting)
    return calls


def queued_job(study, coordinator) -> ExportJob:
    # Not through request_export: its after-commit send would run the task eagerly at once.
    return ExportJob.objects.create(study=study, requested_by=coordinator, kind="codes", format="csv")


def files_of(job: ExportJob, export_dir) -> list[str]:
    folder = export_dir / f"job-{job.pk}"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.django_db(transaction=True)
def test_the_same_export_task_delivered_twice_at_once_writes_one_file_once(study, coordinator, export_dir, written):
    job = queued_job(study, coordinator)
    start = threading.Barrier(2)
    results: dict[str, dict] = {}

    def deliver(name: str) -> None:
        try:
            start.wait(timeout=30)
            results[name] = tasks.run_export.apply(args=[job.pk]).get()
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(f"delivery-{i}",), name=f"delivery-{i}") for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r["ok"] for r in results.values()) == [False, True], results
    loser = next(r for r in results.values() if not r["ok"])
    assert loser["error"] in ("busy", "finished"), loser
    assert len(written) == 1  # the file was written once, by the winner
    assert files_of(job, export_dir) == [f"{study.slug}-codes.csv"]  # one file, no temporary left
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 1)


@pytest.mark.django_db
def test_a_live_claim_is_not_taken_over_a_stale_one_is(study, coordinator, export_dir, written, settings):
    settings.MI_EXPORT_CLAIM_STALE_SECONDS = 300
    job = queued_job(study, coordinator)
    ExportJob.objects.filter(pk=job.pk).update(
        status="running", claim_token="other-worker", claimed_at=timezone.now(), attempts=1
    )
    busy = actions.run_export_job(job.pk)
    assert busy["error"] == "busy" and 290 <= busy["retry_in"] <= 301
    assert written == [] and files_of(job, export_dir) == []

    # The other worker died: once its claim is older than the timeout, a redelivery takes the job over.
    ExportJob.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(seconds=301))
    assert actions.run_export_job(job.pk)["ok"] is True
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 2) and job.claim_token != "other-worker"
    assert files_of(job, export_dir) == [f"{study.slug}-codes.csv"]
    # A delivery of a finished job writes nothing.
    assert actions.run_export_job(job.pk)["error"] == "finished"
    assert len(written) == 1


@pytest.mark.django_db
def test_a_writer_whose_claim_was_taken_over_leaves_nothing(study, coordinator, export_dir, monkeypatch):
    job = queued_job(study, coordinator)
    original = exports.write_export

    def taken_over_meanwhile(*args, **kwargs):
        rows = original(*args, **kwargs)
        # While this (slow) writer worked, its claim went stale and another delivery took the job.
        ExportJob.objects.filter(pk=job.pk).update(claim_token="newer-delivery", claimed_at=timezone.now())
        return rows

    monkeypatch.setattr(exports, "write_export", taken_over_meanwhile)
    assert actions.run_export_job(job.pk) == {"job": job.pk, "ok": False, "error": "lost"}
    assert files_of(job, export_dir) == []  # neither the file nor its temporary
    job.refresh_from_db()
    assert (job.status, job.claim_token, job.file_path) == ("running", "newer-delivery", "")
