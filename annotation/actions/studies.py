"""Study, membership and split actions."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext, ngettext

from ..errors import ActionError
from ..models import Dialogue, Membership, Study


@transaction.atomic
def create_study(
    *, name: str, change_goal: str, language: str = "zh", slug: str = "", description: str = "", created_by=None
) -> Study:
    """Create a study; its creator becomes its first coordinator."""
    slug = slug or slugify(name)[:80] or "study"
    if Study.objects.filter(slug=slug).exists():
        raise ActionError(gettext("A study with the slug '%(slug)s' already exists.") % {"slug": slug})
    if not change_goal.strip():
        raise ActionError(gettext("A change goal is required: MITI rates change talk against a target behaviour."))
    study = Study.objects.create(
        name=name, slug=slug, language=language, change_goal=change_goal, description=description,
        created_by=created_by,
    )
    if created_by is not None:
        Membership.objects.create(study=study, user=created_by, role=Membership.Role.COORDINATOR)
    return study


@transaction.atomic
def set_membership(study: Study, username: str, role: str) -> Membership:
    """Add a user to the study with a role, or change their role."""
    if role not in Membership.Role.values:
        raise ActionError(gettext("Unknown role '%(role)s'; use one of %(roles)s.")
                          % {"role": role, "roles": ", ".join(Membership.Role.values)})
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ActionError(gettext("No user named '%(username)s'.") % {"username": username})
    membership, _ = Membership.objects.update_or_create(study=study, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def remove_membership(study: Study, username: str) -> None:
    membership = Membership.objects.select_for_update().filter(study=study, user__username=username).first()
    if membership is None:
        raise ActionError(gettext("'%(username)s' is not a member of this study.") % {"username": username})
    if membership.role == Membership.Role.COORDINATOR and (
        Membership.objects.filter(study=study, role=Membership.Role.COORDINATOR).count() == 1
    ):
        raise ActionError(gettext("A study needs at least one coordinator; add another before removing this one."))
    membership.delete()


@transaction.atomic
def split_randomly(study: Study, *, n_test: int, n_train: int | None = None, seed: int = 0) -> dict[str, int]:
    """Assign ``n_test`` random dialogues to test, ``n_train`` (default: the rest) to train, the rest unused.

    Dialogues flagged as content duplicates are left ``unused`` so that no test dialogue also sits in
    train. The seed and counts are recorded on the study so the split can be reported and repeated.
    """
    ids = list(
        Dialogue.objects.filter(study=study, duplicate_of__isnull=True).order_by("id").values_list("id", flat=True)
    )
    if n_test < 0 or (n_train is not None and n_train < 0):
        raise ActionError(gettext("Split sizes must not be negative."))
    if n_test + (n_train or 0) > len(ids):
        raise ActionError(ngettext("The study has %(count)d distinct dialogue; cannot take %(wanted)d.",
                                   "The study has %(count)d distinct dialogues; cannot take %(wanted)d.", len(ids))
                          % {"count": len(ids), "wanted": n_test + (n_train or 0)})
    rng = random.Random(seed)
    rng.shuffle(ids)
    test_ids = ids[:n_test]
    train_ids = ids[n_test:] if n_train is None else ids[n_test : n_test + n_train]
    Dialogue.objects.filter(study=study).update(split=Dialogue.Split.UNUSED)
    Dialogue.objects.filter(id__in=test_ids).update(split=Dialogue.Split.TEST)
    Dialogue.objects.filter(id__in=train_ids).update(split=Dialogue.Split.TRAIN)
    counts = {"test": len(test_ids), "train": len(train_ids), "unused": Dialogue.objects.filter(study=study).count() - len(test_ids) - len(train_ids)}
    study.split_info = {"method": "random", "seed": seed, "n_test": n_test, "n_train": n_train, "counts": counts}
    study.save(update_fields=["split_info"])
    return counts


@transaction.atomic
def split_by_ids(study: Study, *, split: str, external_ids: Sequence[str] | Iterable[str]) -> int:
    """Put the listed dialogues into ``split``; every id must exist (nothing changes otherwise)."""
    if split not in Dialogue.Split.values:
        raise ActionError(gettext("Unknown split '%(split)s'; use train, test or unused.") % {"split": split})
    wanted = [e.strip() for e in external_ids if e and e.strip()]
    found = set(Dialogue.objects.filter(study=study, external_id__in=wanted).values_list("external_id", flat=True))
    missing = [e for e in wanted if e not in found]
    if missing:
        raise ActionError(gettext("Unknown dialogue ids: %(ids)s") % {"ids": ", ".join(missing[:10])}
                          + (" …" if len(missing) > 10 else ""))
    changed = Dialogue.objects.filter(study=study, external_id__in=wanted).update(split=split)
    info = dict(study.split_info or {})
    info.setdefault("by_ids", []).append({"split": split, "count": changed})
    study.split_info = info
    study.save(update_fields=["split_info"])
    return changed
