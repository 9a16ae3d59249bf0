"""``manage.py machine_coder``: register, train and run machine coders (the workers do the work).

    machine_coder train --study SLUG --name NAME --round ROUND [--seed N] [--folds K] [--here]
    machine_coder llm   --study SLUG --name NAME --model MODEL [--codebook FILE]
    machine_coder code  --study SLUG --name NAME --round ROUND [--here]
    machine_coder list  --study SLUG

``--here`` runs the training job or the coding chunks in this process instead of sending them.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ActionError
from annotation.models import CodingRound, Study
from inference.coders import actions, execute
from inference.machine_coding.llm_coder import codebook_text
from inference.models import MachineCoder, RegisteredModel


class Command(BaseCommand):
    help = "Register, train and run machine coders of MITI codes."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="command", required=True)
        for name in ("train", "llm", "code", "list"):
            p = sub.add_parser(name)
            p.add_argument("--study", required=True, help="Study slug.")
            if name != "list":
                p.add_argument("--name", required=True, help="Machine coder name.")
            if name in ("train", "code"):
                p.add_argument("--round", required=True, help="Coding round name.")
                p.add_argument("--here", action="store_true", help="Work in this process, not on a worker.")
            if name == "train":
                p.add_argument("--seed", type=int, default=0)
                p.add_argument("--folds", type=int, default=5)
            if name == "llm":
                p.add_argument("--model", required=True, help="Registered model name.")
                p.add_argument("--codebook", type=Path, default=None, help="Codebook text file.")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"No study with the slug '{options['study']}'.")
        try:
            getattr(self, f"_{options['command']}")(study, options)
        except ActionError as error:
            raise CommandError(str(error)) from error

    def _round(self, study: Study, name: str) -> CodingRound:
        coding_round = CodingRound.objects.filter(study=study, name=name).first()
        if coding_round is None:
            raise CommandError(f"No round named '{name}' in study '{study.slug}'.")
        return coding_round

    def _coder(self, study: Study, name: str) -> MachineCoder:
        coder = MachineCoder.objects.filter(study=study, name=name).first()
        if coder is None:
            raise CommandError(f"No machine coder named '{name}' in study '{study.slug}'.")
        return coder

    def _train(self, study: Study, options) -> None:
        coder = actions.register_classifier(
            study, name=options["name"], training_round=self._round(study, options["round"]),
            seed=options["seed"], folds=options["folds"],
        )
        if not options["here"]:
            self.stdout.write(f"Machine coder {coder.pk} registered; training queued.")
            return
        result = execute.train_classifier(coder.pk)
        coder.refresh_from_db()
        if coder.status != MachineCoder.Status.READY:
            raise CommandError(f"Training failed: {coder.error or result}")
        self.stdout.write(self.style.SUCCESS(
            f"Machine coder {coder.pk} ready: kappa {coder.validation['kappa']:.3f}, "
            f"macro F1 {coder.validation['macro_f1']:.3f} ({len(coder.validation['folds'])} folds by transcript)."
        ))

    def _llm(self, study: Study, options) -> None:
        model = RegisteredModel.objects.filter(name=options["model"]).first()
        if model is None:
            raise CommandError(f"No registered model named '{options['model']}'.")
        codebook = codebook_text(options["codebook"]) if options["codebook"] else ""
        coder = actions.register_llm_coder(study, name=options["name"], model=model, codebook=codebook)
        self.stdout.write(f"Machine coder {coder.pk} registered (LLM, model {model.name}).")

    def _code(self, study: Study, options) -> None:
        coder = self._coder(study, options["name"])
        run = actions.start_coding_run(coder, self._round(study, options["round"]))
        total = run.items.count()
        if options["here"]:
            ids = list(run.items.order_by("id").values_list("id", flat=True))
            for start in range(0, len(ids), run.chunk_size):
                execute.execute_chunk(None, run.pk, ids[start : start + run.chunk_size])
            run.refresh_from_db()
            failed = run.items.filter(status="failed").count()
            self.stdout.write(f"Run {run.pk} {run.status}: {total - failed}/{total} volleys coded, {failed} failed.")
        else:
            self.stdout.write(f"Run {run.pk} started: {total} volleys on queue '{run.queue}'.")

    def _list(self, study: Study, options) -> None:
        for coder in MachineCoder.objects.filter(study=study).order_by("name"):
            kappa = coder.validation.get("kappa")
            shown = f"{kappa:.3f}" if isinstance(kappa, float) else "-"
            self.stdout.write(f"{coder.pk}\t{coder.name}\t{coder.kind}\t{coder.status}\tkappa {shown}")
