"""The Django admin's "start a generation run" action: the admin's trigger of the issue (beside the
study page and ``manage.py generate``). Two steps, like Django's delete action."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from annotation.models import Study
from inference.models import GenerationRun, RegisteredModel

CHANGELIST = "admin:inference_registeredmodel_changelist"
ACTION = "start_generation_runs"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_admin_starts_one_run_per_selected_model_after_choosing_study_and_split(
    demo_study, demo_model, admin_user, client_for, django_capture_on_commit_callbacks
):
    client = client_for(admin_user)
    url = reverse(CHANGELIST)
    step1 = client.post(url, {"action": ACTION, ACTION_CHECKBOX_NAME: [demo_model.pk]})
    assert step1.status_code == 200
    assert b"Start a generation run" in step1.content and b"demo-tiny" in step1.content
    assert GenerationRun.objects.count() == 0  # nothing happens before the second step

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        step2 = client.post(
            url,
            {
                "action": ACTION,
                ACTION_CHECKBOX_NAME: [demo_model.pk],
                "apply": "1",
                "study": demo_study.pk,
                "split": "test",
                "chunk_size": 4,
            },
        )
    assert step2.status_code == 302
    run = GenerationRun.objects.get()
    assert (run.study, run.model, run.split, run.chunk_size, run.created_by) == (
        demo_study, demo_model, "test", 4, admin_user
    )
    assert run.items.count() == 15
    assert len(callbacks) == 1  # the chunks are enqueued after commit, as from the study page
    page = f"/studies/{demo_study.slug}/generation/runs/{run.pk}/"
    assert messages_of(step2) == [f'demo-tiny: <a href="{page}">run {run.pk}</a> started on {demo_study.slug} (test).']
    shown = client.get(step2["Location"]).content.decode()
    assert f'<a href="{page}">run {run.pk}</a> started' in shown  # a link, not escaped text

    # The run list says how far each run is, and links to its page.
    listing = client.get(reverse("admin:inference_generationrun_changelist")).content.decode()
    assert 'class="field-progress">0/15</td>' in listing
    assert f'<a href="{page}">open</a>' in listing
    run.items.filter(round_index=0).update(status="done")
    run.items.filter(round_index=1).update(status="failed")
    listing = client.get(reverse("admin:inference_generationrun_changelist")).content.decode()
    assert 'class="field-progress">4/15, 4 failed</td>' in listing


@pytest.mark.django_db
def test_a_refused_model_is_reported_and_creates_nothing_while_the_others_start(
    demo_study, demo_model, admin_user, client_for, tmp_path
):
    gone = RegisteredModel.objects.create(name="gone", backend="transformers", base_model=str(tmp_path / "none"))
    client = client_for(admin_user)
    response = client.post(
        reverse(CHANGELIST),
        {
            "action": ACTION,
            ACTION_CHECKBOX_NAME: [demo_model.pk, gone.pk],
            "apply": "1",
            "study": demo_study.pk,
            "split": "test",
            "chunk_size": 8,
        },
    )
    assert response.status_code == 302
    assert list(GenerationRun.objects.values_list("model__name", flat=True)) == ["demo-tiny"]
    notes = messages_of(response)
    assert notes[0].startswith("demo-tiny: <a href=")
    assert notes[1].startswith("gone: Model 'gone' cannot generate:")


@pytest.mark.django_db
def test_bad_choices_show_the_form_again_and_a_study_without_the_split_is_refused(
    demo_model, admin_user, client_for, study
):
    client = client_for(admin_user)
    url = reverse(CHANGELIST)
    base = {"action": ACTION, ACTION_CHECKBOX_NAME: [demo_model.pk], "apply": "1", "split": "test"}
    again = client.post(url, {**base, "study": study.pk, "chunk_size": 0})
    assert again.status_code == 200 and b"errorlist" in again.content
    empty = client.post(url, {**base, "study": Study.objects.get(pk=study.pk).pk, "chunk_size": 8})
    assert empty.status_code == 302
    assert "has no dialogues in the 'test' split" in messages_of(empty)[0]
    assert GenerationRun.objects.count() == 0


@pytest.mark.django_db
def test_staff_without_the_add_run_permission_do_not_get_the_action(make_user, demo_model, client):
    staff = make_user("staff", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_registeredmodel"))
    client.force_login(staff)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200 and ACTION.encode() not in page.content
    staff.user_permissions.add(Permission.objects.get(codename="add_generationrun"))
    assert ACTION.encode() in client.get(reverse(CHANGELIST)).content
