"""``manage.py gpu_preflight``: is this machine ready to be a GPU worker? One line per check.

Thin: the checks are :mod:`inference.preflight`'s; ``--record`` stores the result for the models
page (``inference.actions.record_preflight``). Exits with status 1 when a check failed, so the
compose ``gpu-worker`` stops with the reason instead of taking tasks it cannot run.
"""

from __future__ import annotations

import socket

from django.core.management.base import BaseCommand, CommandError

from inference import actions, preflight, registry
from inference.models import RegisteredModel

MARKS = {preflight.OK: "ok  ", preflight.FAILED: "FAIL", preflight.SKIPPED: "skip", preflight.NOTE: "note"}


class Command(BaseCommand):
    help = (
        "Check this machine as a GPU worker: CUDA, driver/CUDA versions, C compiler, vLLM, free GPU memory, "
        "engine options, weights present, and one generation with the demo model through vLLM."
    )

    def add_arguments(self, parser):
        parser.add_argument("--record", action="store_true", help="Store the result for the models page.")
        parser.add_argument("--hostname", default=None, help="Name to record (default: this machine's).")
        parser.add_argument(
            "--eager", action="store_true", help="Generate with enforce_eager (no torch.compile; faster start)."
        )

    def handle(self, *args, record=False, hostname=None, eager=False, **options):
        from inference.management.commands.build_demo_model import ensure_demo_model

        specs = [registry.spec_for(model) for model in RegisteredModel.objects.order_by("name")]
        checks = preflight.run_checks(specs, lambda: ensure_demo_model(steps=100)[0], enforce_eager=eager)
        for check in checks:
            self.stdout.write(f"[{MARKS[check.status]}] {check.name}: {check.message}")
        if record:
            actions.record_preflight(hostname or socket.gethostname(), [c.as_dict() for c in checks])
        failed = [check.name for check in checks if check.status == preflight.FAILED]
        if failed:
            raise CommandError(f"not ready as a GPU worker: {', '.join(failed)} failed (see above)")
        self.stdout.write(self.style.SUCCESS("ready as a GPU worker"))
