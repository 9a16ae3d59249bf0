"""Blinding side channels (docs/blinding.md): no number, order or timestamp a coder receives tells the
transcript's source.

One seeded round over 40 reference and 40 generated transcripts, built with ``bulk_create`` in the
order a real study makes them — every reference transcript, volley and utterance before every
generated one, so their database ids separate the sources perfectly (checked below: the dataset would
catch a leak). Two coders code every transcript (overlap 100 %). For each assignment the coder opens
the page, saves a code over HTMX (a partial), reads the API workspace and saves a code through the API;
then both queues (page and API). Every orderable value in those responses — numbers in HTML
attributes, in the page's JSON data, in response headers, numbers and timestamps in API bodies, and
blind codes by their alphabetical rank — is a field; a field's samples are labelled with the source of
the assignment they came from. For every field, the best single threshold (either direction) must
classify the source with (balanced) accuracy ≤ 0.6.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from datetime import datetime
from html.parser import HTMLParser

import pytest
from rest_framework.test import APIClient

from annotation import actions
from annotation.models import Assignment, Dialogue, Transcript, TranscriptSource, Utterance, Volley

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
PER_SOURCE = 40
SEED = 20261129
LIMIT = 0.6
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Random per request or session, not per transcript: no order to exploit.
IGNORED_ATTRS = {("input", "csrfmiddlewaretoken")}


def best_split_accuracy(samples: list[tuple[float, str]]) -> float:
    """Best balanced accuracy of one threshold on the value (reference on one side, generated on the other)."""
    n_ref = sum(1 for _v, label in samples if label == "reference")
    n_gen = len(samples) - n_ref
    if not n_ref or not n_gen:
        return 0.5
    best, ref_below, gen_below = 0.5, 0, 0
    ordered = sorted(samples)
    for i, (value, label) in enumerate(ordered):
        ref_below += label == "reference"
        gen_below += label != "reference"
        if i + 1 < len(ordered) and ordered[i + 1][0] == value:
            continue  # a threshold falls between distinct values only
        below = (ref_below / n_ref + (n_gen - gen_below) / n_gen) / 2
        best = max(best, below, 1 - below)
    return best


class _Attributes(HTMLParser):
    """Numbers in every attribute of every tag: field = (tag, attribute, value with numbers as #, k-th number)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, float]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if not value or (tag, attrs.get("name")) in IGNORED_ATTRS and name == "value":
                continue
            shape = NUMBER.sub("#", value)[:80]
            for k, number in enumerate(NUMBER.findall(value)):
                self.fields.append((f"html <{tag} {name}={shape!r}>#{k}", float(number)))


def json_fields(data, path: str, out: list[tuple[str, float]], blind_ranks: dict[str, int]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "blind_code" and isinstance(value, str):
                out.append((f"{path}.blind_code (rank)", float(blind_ranks[value])))
            else:
                json_fields(value, f"{path}.{key}", out, blind_ranks)
    elif isinstance(data, list):
        for value in data:
            json_fields(value, f"{path}[]", out, blind_ranks)
    elif isinstance(data, bool):
        out.append((path, float(data)))
    elif isinstance(data, int | float):
        out.append((path, float(data)))
    elif isinstance(data, str) and ISO.match(data):
        out.append((f"{path} (time)", datetime.fromisoformat(data.replace("Z", "+00:00")).timestamp()))


def page_fields(kind: str, response, blind_ranks: dict[str, int]) -> list[tuple[str, float]]:
    html = response.content.decode()
    parser = _Attributes()
    parser.feed(html)
    out = [(f"{kind} {name}", value) for name, value in parser.fields]
    for blob in re.findall(r'<script id="coding-data" type="application/json">(.*?)</script>', html, re.S):
        json_fields(json.loads(blob), f"{kind} coding-data", out, blind_ranks)
    for code in re.findall(r"T-[0-9A-Z]{5}", html):
        if code in blind_ranks:
            out.append((f"{kind} blind code (rank)", float(blind_ranks[code])))
    for header in ("X-Assignment-Version", "X-Coding-Target"):
        for k, number in enumerate(NUMBER.findall(response.get(header, ""))):
            out.append((f"{kind} header {header}#{k}", float(number)))
    return out


def build_round(study, coders) -> tuple[dict[int, str], dict[str, int]]:
    """The seeded round; returns the source kind of every transcript and the blind codes' ranks."""
    rng = random.Random(SEED)
    dialogues = Dialogue.objects.bulk_create(
        [Dialogue(study=study, external_id=f"d{i:03d}", split="test") for i in range(PER_SOURCE)]
    )
    reference = TranscriptSource.objects.create(study=study, kind="reference", label="Reference dialogues")
    generated = TranscriptSource.objects.create(study=study, kind="generated", label="Model X run 5", generation_run_id=5)
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    codes = iter(rng.sample(sorted({"T-" + "".join(rng.choice(alphabet) for _ in range(5)) for _ in range(400)}),
                            2 * PER_SOURCE))
    shapes = {d.pk: [rng.randint(1, 3) for _ in range(rng.randint(2, 4))] for d in dialogues}
    kind_of: dict[int, str] = {}
    # Source by source, as a real study creates them: database ids grow with the source.
    for source in (reference, generated):
        transcripts = Transcript.objects.bulk_create(
            [Transcript(source=source, dialogue=d, blind_code=next(codes)) for d in dialogues]
        )
        volleys = Volley.objects.bulk_create(
            [Volley(transcript=t, index=i, client_context=f"client {i}", text=f"reply {i}")
             for t in transcripts for i in range(len(shapes[t.dialogue_id]))]
        )
        Utterance.objects.bulk_create(
            [Utterance(volley=v, index=j, text=f"unit {j}")
             for v in volleys for j in range(shapes[v.transcript.dialogue_id][v.index])]
        )
        kind_of.update({t.pk: source.kind for t in transcripts})
    actions.create_coding_round(study, name="Blind", sources=[reference, generated], coders=coders, overlap=1.0,
                                seed=SEED)
    ranks = {code: rank for rank, code in enumerate(sorted(Transcript.objects.values_list("blind_code", flat=True)))}
    return kind_of, ranks


def test_no_coder_visible_orderable_field_separates_the_sources(client_for, study, coder, coder2):
    kind_of, ranks = build_round(study, [coder, coder2])
    # The dataset would catch a leak: database ids of utterances separate the sources perfectly.
    raw = [(float(pk), kind_of[tid]) for pk, tid in Utterance.objects.values_list("pk", "volley__transcript_id")]
    assert best_split_accuracy(raw) == 1.0

    samples: dict[str, list[tuple[float, str]]] = defaultdict(list)
    kind_of_assignment = {}
    for user in (coder, coder2):
        client = client_for(user)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {actions.create_token(user, 'blind')[1]}")
        queue = list(Assignment.objects.filter(coder=user).order_by("position"))
        assert len(queue) == 2 * PER_SOURCE
        for a in queue:  # in queue order, as a coder works
            label = kind_of[a.transcript_id]
            kind_of_assignment[a.pk] = label
            collected = page_fields("page", client.get(f"/code/{a.pk}/"), ranks)
            partial = client.post(f"/code/{a.pk}/code/", {"utterance": 1, "code": "SR", "version": 0}, **HX)
            assert partial.status_code == 200
            collected += page_fields("partial", partial, ranks)
            body = api.get(f"/api/assignments/{a.pk}/")
            assert body.status_code == 200
            json_fields(body.json(), "api workspace", collected, ranks)
            saved = api.post(f"/api/assignments/{a.pk}/codes/", {"utterance": 2 if len(body.json()["volleys"]) else 1,
                                                                  "code": "Q", "version": 1}, format="json")
            assert saved.status_code == 200, saved.content
            json_fields(saved.json(), "api saved", collected, ranks)
            for name, value in collected:
                samples[name].append((value, label))

        # The queues: one row (or entry) per assignment, labelled by that assignment's source.
        rows = re.findall(r'<tr class="queue-row.*?</tr>', client.get("/code/").content.decode(), re.S)
        assert len(rows) == 2 * PER_SOURCE
        for row in rows:
            pk = int(re.search(r'href="/code/(\d+)/"', row).group(1))
            parser = _Attributes()
            parser.feed(row)
            for name, value in parser.fields:
                samples[f"queue {name}"].append((value, kind_of_assignment[pk]))
            code = re.search(r"T-[0-9A-Z]{5}", row).group(0)
            samples["queue blind code (rank)"].append((float(ranks[code]), kind_of_assignment[pk]))
        entries = api.get("/api/queue/?limit=500").json()["results"]
        assert len(entries) == 2 * PER_SOURCE
        for entry in entries:
            collected = []
            json_fields(entry, "api queue", collected, ranks)
            for name, value in collected:
                samples[name].append((value, kind_of_assignment[entry["id"]]))

    accuracy = {name: best_split_accuracy(values) for name, values in samples.items()}
    # The fields that matter were really seen: assignment, volley and utterance ids, positions, times.
    for expected in ("api workspace.volleys[].utterances[].id", "api workspace.volleys[].id", "api workspace.id",
                     "api queue.position", "api queue.started_at (time)", "api queue.blind_code (rank)",
                     "page coding-data.assignment", "api saved.volley"):
        assert expected in accuracy, sorted(accuracy)
    assert any(name.startswith("page html <li data-utterance=") for name in accuracy)
    assert any(name.startswith("partial html <section data-volley=") for name in accuracy)
    leaking = {name: round(value, 3) for name, value in accuracy.items() if value > LIMIT}
    assert leaking == {}, leaking
    print(f"{len(accuracy)} fields; worst {max(accuracy.items(), key=lambda kv: kv[1])}")
