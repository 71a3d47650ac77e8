"""delete_all never wipes a tenant and offboards one app only for who may, batch PUT is all or nothing, failed
API-key authentication is throttled per IP and locks a guessed prefix, audited; a job is seen only within the
caller's tenant and, for an app-restricted key, its apps."""

import json
from urllib.parse import quote

import pytest

from memadmin.memory import selectors
from memadmin.memory.capabilities import RUN_JOBS, role_can
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import AuditEvent
from tenants.jobs.models import Job
from tenants.jobs.services import job_erase
from tenants.models import App, TenantAPIKey
from tenants.scoping import scope_for_api_key, scope_for_membership
from tests.support.hostile import api_client, assert_json_error, principals, send


def _total(world, slug="acme"):
    scope = scope_for_membership(getattr(world, f"{slug}_admin"))
    return selectors.memory_counts(scope=scope).total


# --- deleting a whole app ---------------------------------------------------------------------

# One app named alone is the Mem0 Platform's way to offboard it; anything wider, or an app with a wildcard, is a 400.
ONE_APP = [
    "app_id=concierge_app",
    f"filters={quote(json.dumps({'app_id': 'concierge_app'}))}",
    f"filters={quote(json.dumps({'app_id': {'eq': 'concierge_app'}}))}",
    f"filters={quote(json.dumps({'AND': [{'app_id': 'concierge_app'}]}))}",
]
APPS_WIDER = [
    {"app_id": {"in": ["concierge_app", "sports_portal"]}},
    {"app_id": {"in": ["concierge_app"]}},
    {"AND": [{"app_id": {"in": ["concierge_app"]}}, {"created_at": {"gte": 0}}]},
    {"OR": [{"app_id": "concierge_app"}, {"app_id": "sports_portal"}]},
    {"user_id": "*", "app_id": "concierge_app"},
]


@pytest.mark.parametrize("filters", APPS_WIDER)
def test_delete_all_by_apps_never_starts_anything(hostile_world, filters):
    before = _total(hostile_world)
    client = api_client(hostile_world.keys["acme"].full)
    response = send(client, "delete", f"/v1/memories/?filters={quote(json.dumps(filters))}")
    assert "offboard" in assert_json_error(response, 400)["detail"]
    assert _total(hostile_world) == before and not Job.objects.filter(kind=Job.Kind.OFFBOARD_APP).exists()


@pytest.mark.parametrize("query", ONE_APP)
def test_delete_all_by_one_app_schedules_its_offboarding_only_for_who_may(hostile_world, settings, query):
    """Every kind of caller: an unrestricted key and an admin's session start the offboarding (here with a grace
    period, so nothing is deleted yet and the app is frozen); a restricted key, support and viewer get a 403 that
    says why, strangers 401/404; nothing is deleted by any of them. (Globex's own concierge_app is globex's.)"""
    settings.MEMADMIN_OFFBOARD_GRACE_HOURS = 24
    before = _total(hostile_world)
    app = App.objects.get(tenant=hostile_world.acme, app_id="concierge_app")
    for who in principals(hostile_world, hostile_world.acme):  # with the outsider, anonymous and a bad key
        if who.kind == "end_user" or who.name in ("acme:key", "acme:admin"):
            continue  # the end user's link has no API; the two allowed ones go last
        response = send(who.client, "delete", f"/v1/memories/?{query}")
        assert response.status_code in (401, 403, 404), (who.name, response.status_code, response.content)
        if who.name == "acme:key-restricted":
            assert "restricted to some apps" in assert_json_error(response, 403)["detail"]
        if who.name == "acme:key-read-only":
            assert "This API key is read-only" in assert_json_error(response, 403)["detail"]
    assert not Job.objects.filter(kind=Job.Kind.OFFBOARD_APP).exists()
    for name in ("acme:key", "acme:admin"):
        who = next(p for p in principals(hostile_world, hostile_world.acme) if p.name == name)
        response = send(who.client, "delete", f"/v1/memories/?{query}")
        assert response.status_code == 202, (name, response.content)
    jobs = Job.objects.filter(kind=Job.Kind.OFFBOARD_APP)
    assert [job.app_id for job in jobs] == [app.pk] and jobs[0].state == Job.State.SCHEDULED
    app.refresh_from_db()
    assert app.status == App.Status.FROZEN and _total(hostile_world) == before


def test_app_entity_delete_is_400_naming_offboarding(hostile_world):
    before = _total(hostile_world)
    client = api_client(hostile_world.keys["acme"].full)
    response = send(client, "delete", "/v2/entities/app/concierge_app/")
    assert "offboard" in assert_json_error(response, 400)["detail"]
    assert _total(hostile_world) == before


def test_delete_all_by_user_within_an_app_still_works(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    response = send(client, "delete", "/v1/memories/?user_id=alice&app_id=concierge_app")
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["deleted"] == 1


# --- batch PUT, all or nothing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"text": "   "},
        {"metadata": {"user_id": "someone-else"}},
        {"metadata": "not an object"},
        {"metadata": ["not", "an", "object"]},
    ],
)
def test_batch_put_validates_the_whole_batch_before_writing(hostile_world, bad):
    first, second = hostile_world.memories["acme"][:2]
    client = api_client(hostile_world.keys["acme"].full)
    before = json.loads(send(client, "get", f"/v1/memories/{first.id}/").content)
    body = {"memories": [{"memory_id": first.id, "text": "changed"}, {"memory_id": second.id, **bad}]}
    assert_json_error(send(client, "put", "/v1/batch/", body), 400)
    assert json.loads(send(client, "get", f"/v1/memories/{first.id}/").content) == before


@pytest.mark.parametrize("second", ["missing", "other tenant", "outside the key's apps"])
def test_batch_put_whose_second_memory_is_not_found_writes_nothing(hostile_world, second):
    first = hostile_world.memories["acme"][0]  # concierge_app
    second_id = {
        "missing": "no-such-memory",
        "other tenant": hostile_world.memories["globex"][0].id,
        "outside the key's apps": hostile_world.memories["acme"][2].id,
    }[second]
    client = api_client(hostile_world.keys["acme"].restricted)
    before = json.loads(send(client, "get", f"/v1/memories/{first.id}/").content)
    body = {"memories": [{"memory_id": first.id, "text": "changed"}, {"memory_id": second_id, "text": "changed"}]}
    assert_json_error(send(client, "put", "/v1/batch/", body), 404)
    assert json.loads(send(client, "get", f"/v1/memories/{first.id}/").content) == before


# --- failed key authentication ---------------------------------------------------------------


@pytest.fixture
def auth_limits(settings):
    settings.MEMADMIN_API_AUTH_FAILURE_LIMIT = 5
    settings.MEMADMIN_API_KEY_LOCK_FAILURES = 3
    settings.MEMADMIN_API_AUTH_COOLOFF_MINUTES = 15
    return settings


def test_random_keys_from_one_ip_are_throttled(hostile_world, auth_limits):
    statuses = []
    for i in range(8):
        client = api_client(f"guess{i}.secret{i}")
        statuses.append(send(client, "get", "/v1/ping/").status_code)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    # A good key from that same address waits too: the address is cooling off, not the key.
    response = send(api_client(hostile_world.keys["acme"].full), "get", "/v1/ping/")
    assert_json_error(response, 429)
    assert response["Retry-After"]
    # Another address is unaffected.
    other = api_client(hostile_world.keys["acme"].full)
    assert other.get("/v1/ping/", REMOTE_ADDR="10.9.9.9").status_code == 200


def test_requests_without_credentials_count_too(hostile_world, auth_limits):
    client = api_client()
    statuses = [send(client, "get", "/v1/ping/").status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses


def test_guessing_a_real_prefix_locks_it_and_is_audited(hostile_world, auth_limits):
    row = hostile_world.keys["acme"].full_row
    for i in range(3):
        response = api_client(f"{row.prefix}.wrong{i}").get("/v1/ping/", REMOTE_ADDR=f"10.0.0.{i + 1}")
        assert response.status_code == 401
    # Locked: even the right key, from a fresh address, waits out the cool-off.
    response = api_client(hostile_world.keys["acme"].full).get("/v1/ping/", REMOTE_ADDR="10.0.1.1")
    assert_json_error(response, 429)
    events = AuditEvent.objects.filter(tenant=hostile_world.acme)
    assert events.filter(action="api.auth_failed").count() == 3
    locked = events.get(action="api.key_locked")
    assert locked.details["prefix"] == row.prefix and locked.ip
    # Other keys of the tenant keep working.
    assert api_client(hostile_world.keys["acme"].restricted).get("/v1/ping/", REMOTE_ADDR="10.0.1.2").status_code == 200


def test_success_does_not_count(hostile_world, auth_limits):
    client = api_client(hostile_world.keys["acme"].full)
    assert all(send(client, "get", "/v1/ping/").status_code == 200 for _ in range(10))


# --- jobs: seen only within the caller's tenant and apps ----------------------------------------


def _erasure_by_key(tenant, *app_ids: str):
    """A deferred erasure requested by a key bound to ``app_ids``: a job over those apps only."""
    row, _ = TenantAPIKey.objects.create_key(name=f"{tenant.slug}-{'-'.join(app_ids)}", tenant=tenant)
    row.apps.set(tenant.apps.filter(app_id__in=app_ids))
    job, _ = job_erase(scope=scope_for_api_key(row), filters=filter_from_fields(user_id="alice"))
    return job


def _expected_job_status(who, job, restricted_apps) -> set[int]:
    if who.tenant is None or who.kind == "end_user":  # no API credentials, a bad key, or no tenant at all
        return {401} if who.kind != "staff" else {403}
    if who.name.endswith("key-expired"):
        return {401}
    if who.kind == "staff" and not role_can(who.role, RUN_JOBS):
        return {403}  # the role is refused before any lookup, whatever the id
    if job.tenant_id != who.tenant.pk:
        return {404}
    if who.name.endswith("key-restricted") and not set(job.params["app_pks"]) <= restricted_apps:
        return {404}
    return {200}


def test_jobs_on_the_api_by_principal_tenant_and_apps(hostile_world):
    """Every principal kind of Acme at Acme's jobs (within and beyond the restricted key's concierge_app)
    and at Globex's: 404 outside the tenant or the key's apps, never 403 for an id, never 500."""
    world = hostile_world
    jobs = [
        _erasure_by_key(world.acme, "concierge_app"),
        _erasure_by_key(world.acme, "sports_portal"),
        _erasure_by_key(world.acme, "concierge_app", "sports_portal"),
        _erasure_by_key(world.globex, "concierge_app"),
    ]
    restricted_apps = set(world.keys["acme"].restricted_row.apps.values_list("pk", flat=True))
    for who in principals(world, world.acme):
        for job in jobs:
            response = send(who.client, "get", f"/v1/jobs/{job.pk}/")
            expected = _expected_job_status(who, job, restricted_apps)
            assert response.status_code in expected, (who.name, job.params["app_pks"], response.content[:200])
            if response.status_code != 200:
                assert_json_error(response)
            else:
                assert response.json()["id"] == str(job.pk)
