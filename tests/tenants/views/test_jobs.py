"""tenants/views/jobs.py: offboarding, export and erasure jobs from the dashboard; job pages, cancel, download."""
# ruff: noqa: F811  (pytest fixtures imported by name are used as arguments)

import json

import pytest
from django.urls import reverse

from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_export
from tests.support.dashboard import login

# The jobs world (apps filled with raw Mem0-layout memories by the bench loader), not this folder's own.
from tests.support.jobs import job_files, load, world  # noqa: F401 - fixtures


def test_offboard_from_the_dashboard_to_the_receipt(client, world, load):
    load(world.concierge, 120)
    login(client, world.admin)
    page = client.get(reverse("app_offboard", args=["acme", "concierge_app"]))
    assert page.status_code == 200 and b'data-testid="memories">120<' in page.content
    start = reverse("app_offboard_start", args=["acme", "concierge_app"])
    wrong = client.post(start, {"confirm_app_id": "concierge"})
    assert wrong.status_code == 400 and b"Type the app_id exactly" in wrong.content
    assert not Job.objects.exists()

    response = client.post(start, {"confirm_app_id": "concierge_app"})
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("job", args=["acme", job.pk])
    fragment = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in fragment.content and b"<html" not in fragment.content

    run_job(job.pk)
    done = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert b"hx-trigger" not in done.content  # polling stops when the job is done
    assert b"Remaining 0, verified" in done.content
    receipt = client.get(reverse("job_receipt", args=["acme", job.pk]))
    assert receipt["Content-Disposition"].startswith("attachment")
    assert json.loads(receipt.content)["per_app"]["concierge_app"]["memories"] == 120
    assert b"concierge_app" in client.get(reverse("jobs", args=["acme"])).content


def test_htmx_offboard_redirects_with_hx_redirect(client, world):
    login(client, world.admin)
    response = client.post(
        reverse("app_offboard_start", args=["acme", "sports_portal"]),
        {"confirm_app_id": "sports_portal"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204 and "/jobs/" in response["HX-Redirect"]


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_read_only_members_cannot_offboard_or_export(client, world, role):
    login(client, getattr(world, role))
    assert client.get(reverse("app_offboard", args=["acme", "concierge_app"])).status_code == 403
    start = reverse("app_offboard_start", args=["acme", "concierge_app"])
    assert client.post(start, {"confirm_app_id": "concierge_app"}).status_code == 403
    assert client.post(reverse("app_export_job", args=["acme", "concierge_app"]), {"format": "csv"}).status_code == 403


def test_outsider_gets_404_everywhere(client, world, load):
    load(world.concierge, 3)
    job = job_export(scope=world.scope(), app_id="concierge_app")
    login(client, world.outsider)
    for name, args in [
        ("jobs", []),
        ("job", [job.pk]),
        ("job_receipt", [job.pk]),
        ("job_download", [job.pk]),
        ("app_offboard", ["concierge_app"]),
    ]:
        assert client.get(reverse(name, args=["acme", *args])).status_code == 404, name
    assert client.post(reverse("job_cancel", args=["acme", job.pk])).status_code == 404


def test_mutations_are_post_only(client, world):
    login(client, world.admin)
    job = job_export(scope=world.scope(), app_id="concierge_app")
    for url in (
        reverse("app_offboard_start", args=["acme", "concierge_app"]),
        reverse("app_export_job", args=["acme", "concierge_app"]),
        reverse("tenant_export_job", args=["acme"]),
        reverse("user_erase", args=["acme"]),
        reverse("job_cancel", args=["acme", job.pk]),
    ):
        assert client.get(url).status_code == 405, url


def test_export_job_and_download(client, world, load):
    load(world.concierge, 40)
    login(client, world.admin)
    response = client.post(reverse("app_export_job", args=["acme", "concierge_app"]), {"format": "csv"})
    job = Job.objects.get(kind="export_app")
    assert response.status_code == 302
    assert client.post(reverse("tenant_export_job", args=["acme"]), {"format": "xml"}).status_code == 400
    download = reverse("job_download", args=["acme", job.pk])
    assert client.get(download).status_code == 404  # not written yet
    run_job(job.pk)
    file = client.get(download)
    assert file.status_code == 200 and len(b"".join(file.streaming_content).splitlines()) == 41
    login(client, world.support)
    assert client.get(download).status_code == 403


def test_support_erases_a_user_in_the_background(client, world, load):
    load(world.concierge, 50, users=5)
    login(client, world.support)
    url = reverse("user_erase", args=["acme"])
    assert client.post(url, {"user_id": "user-1", "confirm_user_id": "user-2"}).status_code == 400
    response = client.post(url, {"user_id": "user-1", "confirm_user_id": "user-1"})
    job = Job.objects.get(kind="erase_user")
    assert response.status_code == 302
    run_job(job.pk)
    job.refresh_from_db()
    assert job.receipt["totals"]["memories"] == 10
    login(client, world.viewer)
    assert client.post(url, {"user_id": "user-2", "confirm_user_id": "user-2"}).status_code == 403


def test_cancel_a_scheduled_offboarding(client, world, settings):
    settings.MEMADMIN_OFFBOARD_GRACE_HOURS = 24
    login(client, world.admin)
    client.post(reverse("app_offboard_start", args=["acme", "concierge_app"]), {"confirm_app_id": "concierge_app"})
    job = Job.objects.get()
    page = client.get(reverse("job", args=["acme", job.pk]))
    assert b"the app is frozen until then" in page.content and b"Cancel this job" in page.content
    client.post(reverse("job_cancel", args=["acme", job.pk]))
    job.refresh_from_db()
    assert job.state == "cancelled"
    world.concierge.refresh_from_db()
    assert world.concierge.status == "active"


def test_an_export_started_from_the_offboarding_leads_back_to_it(client, world, load):
    load(world.concierge, 5)
    login(client, world.admin)
    offboard = reverse("app_offboard", args=["acme", "concierge_app"])
    assert 'name="back" value="offboard"' in client.get(offboard).content.decode()
    response = client.post(
        reverse("app_export_job", args=["acme", "concierge_app"]), {"format": "json", "back": "offboard"}
    )
    job = Job.objects.get(kind="export_app")
    assert response.status_code == 302 and response["Location"].endswith(f"/jobs/{job.pk}/?back=offboard")
    page = client.get(response["Location"]).content.decode()
    assert f'href="{offboard}" data-testid="job-back">← Back to offboarding concierge_app<' in page
    assert "All jobs" in page
    # Opened from the job list, the page leads to the job's app; a made-up back= is a 400, not a guess.
    plain = client.get(reverse("job", args=["acme", job.pk])).content.decode()
    assert 'data-testid="job-back">← concierge_app<' in plain
    assert client.get(reverse("job", args=["acme", job.pk]), {"back": "https://evil.example"}).status_code == 400
    assert (
        client.post(
            reverse("app_export_job", args=["acme", "concierge_app"]), {"format": "json", "back": "nowhere"}
        ).status_code
        == 400
    )
