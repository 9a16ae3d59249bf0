"""A real task through Redis to a real Celery worker process and back."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.worker


def test_ping_roundtrip_through_real_worker(celery_worker_process):
    from mi_platform.celery import ping

    result = ping.delay(41)
    assert result.get(timeout=30) == 42
    assert result.successful()
