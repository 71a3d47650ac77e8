"""GET /v1/jobs/<id>/: an API caller follows the erasure its 202 started, to the receipt, within its scope.

Jobs run in-process with run_job (the test transaction never commits, so no Celery message goes out)."""
# ruff: noqa: F811  (pytest fixtures imported by name are used as arguments)

import pytest

from memadmin.memory.capabilities import API, STAFF_ROLES, role_can
from memadmin.memory.filters import filter_from_fields
from tenants.api.permissions import ENDPOINT_CAPABILITIES
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_erase, job_export, job_offboard_app
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key, scope_for_membership
from tests.support.jobs import job_files, load  # noqa: F401 - fixtures: flat indexes, the loader
from tests.support.stores import app_client, on_both_stores

MISSING = "00000000-0000-4000-8000-000000000000"


def _key_row(key: str) -> TenantAPIKey:
    return TenantAPIKey.objects.get_from_key(key)


def _erase(world, key: str, *ids_of: str, user_id: str = "user-0") -> Job:
    """A deferred erasure of user_id requested by ``key`` (a job over the key's apps)."""
    job, _ = job_erase(scope=scope_for_api_key(_key_row(key)), filters=filter_from_fields(user_id=user_id))
    assert sorted(job.params["app_pks"]) == sorted(world.__dict__[name].pk for name in ids_of)
    return job


@on_both_stores
@pytest.mark.parametrize("path", ["/v1/memories/?user_id=user-0", "/v2/entities/user/user-0/"])
def test_a_202_erasure_is_followed_to_its_receipt(world, api, load, settings, path):
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 5  # 20 memories of user-0: a job
    load(world.acme_concierge, 40, users=2)
    load(world.acme_sports, 10, users=2, seed=3)
    raw = app_client(world.acme_concierge)
    text = raw.hget(next(raw.scan_iter(match=f"mem0:{world.acme_concierge.collection_name}:*")), "memory").decode()
    api.as_key(world.acme_key)

    started = api.delete(path)
    assert started.status_code == 202, started.content
    body = started.json()
    job = Job.objects.get(pk=body["job_id"])
    assert body["status_url"] == f"/v1/jobs/{job.pk}/"
    assert body["reason"] in ("large", "index_unhealthy") and body["state"] == "scheduled"

    waiting = api.get(body["status_url"])
    assert waiting.status_code == 200, waiting.content
    assert waiting.json()["state"] == "scheduled" and waiting.json()["receipt"] is None
    assert waiting.json()["progress"] == {"done": 0, "total": 0, "percent": 0, "eta_seconds": None}

    assert run_job(job.pk) == Job.State.SUCCEEDED
    done = api.get(body["status_url"])
    assert done.status_code == 200
    result = done.json()
    assert result["id"] == str(job.pk) and result["kind"] == "erase_user" and result["state"] == "succeeded"
    assert result["progress"]["done"] == 25 and result["progress"]["percent"] == 100
    assert result["error"] is None and result["started_at"] and result["finished_at"]
    receipt = result["receipt"]
    assert receipt["remaining"] == 0 and receipt["verified_at"] and receipt["job_id"] == str(job.pk)
    assert (
        receipt["per_app"]["concierge_app"]["memories"] == 20 and receipt["per_app"]["sports_portal"]["memories"] == 5
    )
    job.refresh_from_db()
    assert receipt == job.receipt  # the dashboard's receipt.json, as it is stored
    assert text not in done.content.decode() and "memory number" not in done.content.decode()


def test_another_tenants_job_is_not_found_like_a_missing_one(world, api, load, settings):
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 5
    load(world.globex_concierge, 20, users=1)
    started = api.as_key(world.globex_key).delete("/v1/memories/?user_id=user-0")
    assert started.status_code == 202
    url = started.json()["status_url"]
    assert api.get(url).status_code == 200

    theirs = api.as_key(world.acme_key).get(url)
    missing = api.get(f"/v1/jobs/{MISSING}/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() and theirs.json()["error"]["code"] == "not_found"


def test_a_restricted_key_sees_only_jobs_within_its_apps(world, api):
    concierge_key = world.make_key(world.acme, "concierge-only", apps=[world.acme_concierge])
    sports_key = world.make_key(world.acme, "sports-only", apps=[world.acme_sports])
    both_key = world.make_key(world.acme, "both", apps=[world.acme_concierge, world.acme_sports])
    admin = scope_for_membership(world.acme_admin)
    concierge_erasure = _erase(world, concierge_key, "acme_concierge")
    tenant_erasure = _erase(world, world.acme_key, "acme_concierge", "acme_sports", user_id="user-1")
    sports_offboarding, _ = job_offboard_app(scope=admin, app_id="sports_portal", grace_hours=24)
    tenant_export = job_export(scope=admin)  # tenant-wide: names no apps

    visible = {
        world.acme_key: {concierge_erasure, tenant_erasure, sports_offboarding, tenant_export},
        both_key: {concierge_erasure, tenant_erasure, sports_offboarding},
        concierge_key: {concierge_erasure},
        sports_key: {sports_offboarding},
    }
    for key, jobs in visible.items():
        api.as_key(key)
        for job in (concierge_erasure, tenant_erasure, sports_offboarding, tenant_export):
            response = api.get(f"/v1/jobs/{job.pk}/")
            assert response.status_code == (200 if job in jobs else 404), (_key_row(key).name, job.kind)
            if response.status_code == 404:
                assert response.json()["error"]["code"] == "not_found"


def test_a_restricted_key_still_sees_the_offboarding_of_its_own_app(world, api, load):
    load(world.acme_sports, 5)
    key = world.make_key(world.acme, "sports-only", apps=[world.acme_sports])
    job, _ = job_offboard_app(scope=scope_for_membership(world.acme_admin), app_id="sports_portal", grace_hours=0)
    assert run_job(job.pk) == Job.State.SUCCEEDED  # the app is offboarded: in no scope any more
    response = api.as_key(key).get(f"/v1/jobs/{job.pk}/")
    assert response.status_code == 200 and response.json()["receipt"]["remaining"] == 0


def test_no_credentials_401_bad_ids_404_and_get_only(world, api):
    job = _erase(world, world.acme_key, "acme_concierge", "acme_sports")
    url = f"/v1/jobs/{job.pk}/"
    assert api.get(url).status_code == 401
    assert api.as_key("nope.nope").get(url).status_code == 401
    api.as_key(world.acme_key)
    for bad in ("not-a-uuid", "..", f"{job.pk}x", "*"):
        response = api.get(f"/v1/jobs/{bad}/")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", bad
    for method in ("post", "put", "patch", "delete"):
        assert getattr(api, method)(url).status_code == 405, method


@pytest.mark.parametrize("role,status", [("admin", 200), ("support", 200), ("viewer", 403)])
def test_staff_sessions_follow_the_dashboards_rule(world, api, role, status):
    """run_jobs, as the dashboard's job pages: a viewer is refused whatever the id, before any lookup."""
    job = _erase(world, world.acme_key, "acme_concierge", "acme_sports")
    api.force_login(getattr(world, f"acme_{role}").user)
    assert api.get(f"/v1/jobs/{job.pk}/", HTTP_X_MEMADMIN_TENANT="acme").status_code == status
    expected_missing = 404 if status == 200 else 403
    assert api.get(f"/v1/jobs/{MISSING}/", HTTP_X_MEMADMIN_TENANT="acme").status_code == expected_missing
    api.force_login(world.globex_admin.user)
    assert api.get(f"/v1/jobs/{job.pk}/", HTTP_X_MEMADMIN_TENANT="globex").status_code == 404


def test_whoever_can_start_an_erasure_on_the_api_can_follow_it():
    """A 202 hands out a status_url: every API principal that may delete must be allowed to read it."""
    deleting = ENDPOINT_CAPABILITIES["api-memory-delete-all"]["DELETE"]
    following = ENDPOINT_CAPABILITIES["api-job"]["GET"]
    for role in (*STAFF_ROLES, API):
        if role_can(role, deleting):
            assert role_can(role, following), role
