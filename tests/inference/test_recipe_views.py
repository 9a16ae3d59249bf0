"""Recipe pages with personas: permissions, starting a transformation, progress partial, side-by-side
view, judge filter, prompt versions, export download, fine-tuning page with loss chart, provenance."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.test import Client
from django.utils.html import escape

from annotation.models import Dialogue
from inference import actions as inference_actions
from inference.recipe.models import FineTuneJob, PromptTemplate, TransformationItem, TransformationJob
from tests.inference.recipe_support import (
    MI_TURNS,
    FakeOpenAIServer,
    demo_model_dir,
    eager_celery,  # noqa: F401 - a fixture
    import_demo_dialogues,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def writer(server):
    return inference_actions.register_model(
        name="mi-writer", backend="openai", base_model="mi-writer", server_url=server.url
    )


@pytest.fixture
def judge_model(server):
    return inference_actions.register_model(
        name="mi-judge", backend="openai", base_model="mi-judge", server_url=server.url
    )


@pytest.mark.parametrize(
    "url",
    [
        "/studies/smoking/recipe/",
        "/studies/smoking/recipe/transform/new/",
        "/studies/smoking/recipe/prompts/",
        "/studies/smoking/recipe/export/",
        "/studies/smoking/recipe/finetune/new/",
    ],
)
def test_pages_are_for_the_studys_coordinators(url, study, coordinator, coder, outsider, client_for, client):
    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(coder).get(url).status_code == 403
    assert client_for(coordinator).get(url).status_code == 200


def test_transformation_from_the_form_to_the_side_by_side_view(
    study,
    coordinator,
    coder,
    client_for,
    writer,
    judge_model,
    server,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    import_demo_dialogues(study)
    server.change_client_when = "我抽烟快十年了"
    web = client_for(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(
            "/studies/smoking/recipe/transform/new/",
            {
                "model": writer.pk,
                "split": "train",
                "external_ids": "demo-zh-1, demo-en-1",
                "output_split": "train",
                "judge_model": judge_model.pk,
                "chunk_size": 4,
                "max_new_tokens": 1024,
            },
        )
    job = TransformationJob.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/studies/smoking/recipe/transform/{job.pk}/"
    )
    assert (job.created_by, job.max_new_tokens, job.prompt.name) == (coordinator, 1024, "mi-rewrite")

    page = web.get(f"/studies/smoking/recipe/transform/{job.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "1 accepted, 1 rejected, 0 failed, 0 to do (2)" in html
    assert "client_changed × 1" in html
    assert "demo-en-1-mi-v1" in html and "2/3/3/1 = 9" in html
    assert 'hx-trigger="every 2s"' not in html  # finished: no polling

    partial = web.get(f"/studies/smoking/recipe/transform/{job.pk}/", HTTP_HX_REQUEST="true")
    assert (
        partial.status_code == 200
        and b"<html" not in partial.content
        and b'id="job-progress"' in partial.content
    )

    filtered = web.get(f"/studies/smoking/recipe/transform/{job.pk}/?min_total=9").content.decode()
    assert "demo-en-1-mi-v1" in filtered and "demo-zh-1" not in filtered
    assert (
        "No dialogues match."
        in web.get(f"/studies/smoking/recipe/transform/{job.pk}/?status=failed").content.decode()
    )

    accepted = job.items.get(status=TransformationItem.Status.ACCEPTED)
    side = web.get(f"/studies/smoking/recipe/transform/{job.pk}/items/{accepted.pk}/").content.decode()
    original = Dialogue.objects.get(external_id="demo-en-1").turns.filter(speaker="counselor").first().text
    assert 'id="side-by-side"' in side and escape(original) in side and MI_TURNS[0] in side
    assert "total 9/9" in side
    rejected = job.items.get(status=TransformationItem.Status.REJECTED)
    side = web.get(f"/studies/smoking/recipe/transform/{job.pk}/items/{rejected.pk}/").content.decode()
    assert "client_changed" in side and 'id="raw-output"' in side and "（改写过的来访者发言）" in side

    # Coders never see jobs (they could learn which model wrote what); other studies' ids 404.
    as_coder = Client()
    as_coder.force_login(coder)
    assert as_coder.get(f"/studies/smoking/recipe/transform/{job.pk}/").status_code == 403
    server.change_client_when = None
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(f"/studies/smoking/recipe/transform/{job.pk}/retry/", {"item": rejected.pk})
    assert response.status_code == 302
    rejected.refresh_from_db()
    assert rejected.status == TransformationItem.Status.ACCEPTED


def test_start_form_shows_the_actions_refusal(study, coordinator, client_for, writer):
    import_demo_dialogues(study)
    response = client_for(coordinator).post(
        "/studies/smoking/recipe/transform/new/",
        {
            "model": writer.pk,
            "external_ids": "nope",
            "output_split": "train",
            "chunk_size": 4,
            "max_new_tokens": 100,
        },
    )
    assert response.status_code == 400
    assert "Unknown dialogue id(s): nope." in response.content.decode()
    assert TransformationJob.objects.count() == 0


def test_editing_a_prompt_saves_a_new_version(study, coordinator, client_for):
    web = client_for(coordinator)
    assert "mi-rewrite v1" in web.get("/studies/smoking/recipe/prompts/").content.decode()
    first = PromptTemplate.objects.get(name="mi-rewrite", version=1)
    form = web.get(f"/studies/smoking/recipe/prompts/{first.pk}/edit/").content.decode()
    assert "New version of mi-rewrite (from v1)" in form
    response = web.post(
        f"/studies/smoking/recipe/prompts/{first.pk}/edit/",
        {
            "name": "mi-rewrite",
            "kind": "transform",
            "text": "Rewrite MI-style:\n{dialogue}",
            "note": "shorter",
        },
    )
    assert response.status_code == 302
    second = PromptTemplate.objects.get(name="mi-rewrite", version=2)
    assert (second.text, second.note, second.created_by) == (
        "Rewrite MI-style:\n{dialogue}",
        "shorter",
        coordinator,
    )
    bad = web.post(
        "/studies/smoking/recipe/prompts/new/", {"name": "x", "kind": "transform", "text": "no slot"}
    )
    assert bad.status_code == 400 and "must contain the placeholder {dialogue}" in bad.content.decode()


def test_export_downloads_llamafactory_files(study, coordinator, client_for):
    import_demo_dialogues(study)
    response = client_for(coordinator).post(
        "/studies/smoking/recipe/export/", {"split": "train", "name": "demo"}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["X-Export-Counts"] == "dialogues=8; rounds=27"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["dataset_info.json", "demo_alpaca.json", "demo_sharegpt.json"]
    assert len(json.loads(archive.read("demo_alpaca.json"))) == 27
    assert sorted(json.loads(archive.read("dataset_info.json"))) == ["demo_alpaca", "demo_sharegpt"]
    empty = client_for(coordinator).post("/studies/smoking/recipe/export/", {"split": "test", "name": "demo"})
    assert (
        empty.status_code == 400
        and "no dialogues to export in the &#x27;test&#x27; split" in empty.content.decode()
    )


def test_finetune_page_shows_the_loss_chart_and_the_provenance(
    study,
    coordinator,
    outsider,
    client_for,
    settings,
    tmp_path,
    tmp_path_factory,
    eager_celery,  # noqa: F811 - the fixture imported above
    django_capture_on_commit_callbacks,
):
    pytest.importorskip("torch", reason="fine-tuning needs torch (pip install '.[cpu]')").set_num_threads(1)
    settings.MI_MODEL_STORE = tmp_path / "models"
    import_demo_dialogues(study)
    base = inference_actions.register_model(
        name="demo-tiny", backend="transformers", base_model=str(demo_model_dir(tmp_path_factory))
    )
    web = client_for(coordinator)
    form = {
        "base_model": base.pk,
        "output_name": "tiny-mi",
        "split": "train",
        "queue": "cpu",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0,
        "lora_target": "all",
        "learning_rate": 0.01,
        "num_epochs": 1,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "cutoff_len": 512,
        "lr_scheduler": "constant",
        "warmup_ratio": 0,
        "max_steps": 3,
        "seed": 0,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post("/studies/smoking/recipe/finetune/new/", form)
    job = FineTuneJob.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/studies/smoking/recipe/finetune/{job.pk}/"
    )
    assert job.status == FineTuneJob.Status.DONE, job.log
    page = web.get(f"/studies/smoking/recipe/finetune/{job.pk}/").content.decode()
    assert 'class="loss-chart"' in page and '<path d="M' in page and "step 3/3" in page
    assert "Registered as" in page and "tiny-mi" in page and 'hx-trigger="every 2s"' not in page
    stop = web.post(f"/studies/smoking/recipe/finetune/{job.pk}/stop/", follow=True)
    assert "The job has already finished." in stop.content.decode()

    model = job.result_model
    provenance = web.get(f"/models/{model.pk}/provenance/").content.decode()
    assert "demo-tiny" in provenance
    assert f'href="/studies/smoking/recipe/finetune/{job.pk}/"' in provenance
    assert "learning_rate" in provenance and "dialogue_count" in provenance
    as_outsider = Client()
    as_outsider.force_login(outsider)
    assert as_outsider.get(f"/models/{model.pk}/provenance/").status_code == 403

    bad = dict(form, lora_target=" ", output_name="x")
    response = web.post("/studies/smoking/recipe/finetune/new/", bad)
    assert response.status_code == 400
