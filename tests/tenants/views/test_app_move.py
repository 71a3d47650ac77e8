"""tenants/views/jobs.py app_move / app_move_start and the app page's store line: moving an app between memory
stores from the dashboard (admins only, confirm first, POST only), with two real servers."""
# ruff: noqa: F811  (pytest fixtures imported by name are used as arguments)

import pytest
from django.urls import reverse

from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.models import App
from tests.support.dashboard import login
from tests.support.jobs import job_files, keys_of, load, world  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def no_settle(settings):
    settings.MEMADMIN_MOVE_SETTLE_SECONDS = 0


def test_move_from_the_app_page_to_the_receipt(client, world, load, two_stores, raw_valkey):
    load(world.concierge, 80)
    login(client, world.admin)
    page = client.get(reverse("app", args=["acme", "concierge_app"]))
    assert b"Move to another store" in page.content and b'data-testid="app-store"' in page.content
    form = client.get(reverse("app_move", args=["acme", "concierge_app"]))
    assert form.status_code == 200 and b'data-testid="memories">80<' in form.content
    start = reverse("app_move_start", args=["acme", "concierge_app"])
    wrong = client.post(start, {"store": "second", "confirm_app_id": "concierge"})
    assert wrong.status_code == 400 and b"Type the app_id exactly" in wrong.content
    for hostile in ("nowhere", "default", "../second", "second\x00", ""):
        bad = client.post(start, {"store": hostile, "confirm_app_id": "concierge_app"})
        assert bad.status_code == 400, hostile
    assert not Job.objects.exists()

    response = client.post(start, {"store": "second", "confirm_app_id": "concierge_app"})
    job = Job.objects.get(kind="move_app")
    assert response.status_code == 302 and response["Location"] == reverse("job", args=["acme", job.pk])
    frozen = client.get(reverse("app", args=["acme", "concierge_app"]))
    assert b"Moving to another memory store" in frozen.content and b"Move to another store" not in frozen.content
    assert run_job(job.pk) == Job.State.SUCCEEDED
    done = client.get(reverse("app", args=["acme", "concierge_app"]))
    assert f'data-testid="store-url">{two_stores.url}<'.encode() in done.content
    assert App.objects.get(pk=world.concierge.pk).store == "second"
    assert keys_of(raw_valkey, world.concierge) == 0


def test_one_store_offers_no_move(client, world):
    login(client, world.admin)
    assert b"Move to another store" not in client.get(reverse("app", args=["acme", "concierge_app"])).content
    page = client.get(reverse("app_move", args=["acme", "concierge_app"]))
    assert page.status_code == 200 and b'data-testid="no-other-store"' in page.content


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_only_admins_move(client, world, two_stores, role):
    login(client, getattr(world, role))
    assert client.get(reverse("app_move", args=["acme", "concierge_app"])).status_code == 403
    start = reverse("app_move_start", args=["acme", "concierge_app"])
    assert client.post(start, {"store": "second", "confirm_app_id": "concierge_app"}).status_code == 403
    assert b"app-store" not in client.get(reverse("app", args=["acme", "concierge_app"])).content
    assert not Job.objects.exists()


def test_outsiders_get_404_and_get_is_405(client, world, two_stores):
    login(client, world.outsider)  # globex's admin
    assert client.get(reverse("app_move", args=["acme", "concierge_app"])).status_code == 404
    start = reverse("app_move_start", args=["acme", "sports_portal"])
    assert client.post(start, {"store": "second", "confirm_app_id": "sports_portal"}).status_code == 404
    login(client, world.admin)
    assert client.get(reverse("app_move_start", args=["acme", "concierge_app"])).status_code == 405
    assert client.get(reverse("app_move", args=["acme", "no_such_app"])).status_code == 404
