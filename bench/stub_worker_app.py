"""The Celery app of ``generation_overhead.py --stub --broker-url``'s worker: the real app, with the
instant backend installed (``celery -A bench.stub_worker_app worker -Q cpu --pool solo``)."""

from bench.stub_backend import install
from mi_platform.celery import app

install(app)

__all__ = ["app"]
