import io

import pytest
from django.apps import apps
from django.core.management import call_command

from tenants.jobs.models import Job
from tenants.models import App
from tenants.webhooks.models import Webhook, WebhookDelivery

APP_FLAGS = {"active": "is_active", "frozen": "is_frozen", "moving": "is_moving", "offboarded": "is_offboarded"}
JOB_FLAGS = {
    "scheduled": "is_scheduled",
    "running": "is_running",
    "succeeded": "succeeded",
    "failed": "is_failed",
    "cancelled": "is_cancelled",
}


@pytest.mark.parametrize("status", App.Status.values)
def test_an_app_has_exactly_the_flag_of_its_status(status):
    app = App(status=status)
    assert {flag for flag in APP_FLAGS.values() if getattr(app, flag)} == {APP_FLAGS[status]}


@pytest.mark.parametrize("state", Job.State.values)
def test_a_job_has_the_flag_of_its_state_and_is_either_active_or_done(state):
    job = Job(state=state)
    assert {flag for flag in JOB_FLAGS.values() if getattr(job, flag)} == {JOB_FLAGS[state]}
    assert job.is_active is (state in ("scheduled", "running"))
    assert job.is_done is not job.is_active


def test_a_delivery_is_retrying_only_when_pending_after_an_attempt():
    assert WebhookDelivery(state="pending", attempts=1).is_retrying
    assert not WebhookDelivery(state="pending", attempts=0).is_retrying
    assert not WebhookDelivery(state="failed", attempts=3).is_retrying
    assert WebhookDelivery(state="succeeded").succeeded and WebhookDelivery(state="failed").is_failed


@pytest.mark.parametrize("kind", Job.Kind.values)
def test_cancel_is_offered_while_scheduled_and_while_running_unless_it_cannot_stop_halfway(kind):
    offered = {state for state in Job.State.values if Job(kind=kind, state=state).offers_cancel}
    assert offered == ({"scheduled"} if kind in ("offboard_app", "move_app") else {"scheduled", "running"})


@pytest.mark.django_db
def test_the_packages_models_are_the_tenants_apps_and_match_its_migrations():
    """Job and the webhooks' models live in their packages but belong to the tenants app, with the tables and
    migrations they always had: Django finds them under that label and sees nothing to migrate."""
    for model in (Job, Webhook, WebhookDelivery):
        assert apps.get_model("tenants", model.__name__) is model
        assert model._meta.db_table == f"tenants_{model.__name__.lower()}"
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits with status 1 on a change
    assert "No changes detected" in out.getvalue()
