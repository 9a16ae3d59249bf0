"""The results cache: aggregates and reliability of a study or round, kept while its codings stay the same.

Keyed by a *fingerprint* of the scope's submitted assignments — their number, the sum of their ids and
of their versions, and the latest submission time — read in one aggregate query. Submitting, reopening
(the version goes up, the assignment leaves the set) or adjudicating (a consensus assignment joins)
changes the fingerprint, so a changed scope is never served from the cache: the old entries are simply
never asked for again and expire. Nothing has to remember to invalidate anything.

The cache is Django's default cache (Redis when ``REDIS_URL`` is set, so every web process shares it;
a per-process memory cache otherwise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db.models import Count, Max, Sum

from annotation.models import Assignment, CodingRound, Study

T = TypeVar("T")

# Entries of a changed scope are dead weight; a day lets an idle study's results stay warm overnight.
TIMEOUT_SECONDS = 24 * 3600
# Bumped when what is cached changes shape, so a deployment never unpickles an old layout.
LAYOUT = 1


def fingerprint(study: Study, coding_round: CodingRound | None = None) -> str:
    """A short hash of the scope's submitted assignments (one aggregate query)."""
    flt: dict[str, object] = {"coding_round__study": study, "status": Assignment.Status.SUBMITTED}
    if coding_round is not None:
        flt["coding_round"] = coding_round
    agg = Assignment.objects.filter(**flt).aggregate(
        n=Count("id"), ids=Sum("id"), versions=Sum("version"), last=Max("submitted_at")
    )
    raw = f"{LAYOUT}:{agg['n']}:{agg['ids']}:{agg['versions']}:{agg['last']}"
    return hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:16]


def key(study: Study, coding_round: CodingRound | None, fp: str, part: str) -> str:
    scope = coding_round.pk if coding_round is not None else "all"
    return f"results:{study.pk}:{scope}:{fp}:{part}"


def get_or_compute(
    study: Study, coding_round: CodingRound | None, fp: str, part: str, compute: Callable[[], T]
) -> T:
    """The cached ``part`` for this fingerprint, else ``compute()`` stored under it. An empty ``fp``
    (no fingerprint taken) always computes."""
    if not fp:
        return compute()
    name = key(study, coding_round, fp, part)
    value = cache.get(name)
    if value is None:
        value = compute()
        cache.set(name, value, TIMEOUT_SECONDS)
    return value  # type: ignore[no-any-return]
