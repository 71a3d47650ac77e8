"""GET /v1/events/ and /v1/events/<id>/: the tenant's activity from the audit trail; async_mode adds."""

import pytest

from memadmin.memory.audit import audit_record
from memadmin.memory.models import AuditEvent
from tenants.jobs.models import Job
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_api_key


def _add(api, text: str, user_id: str = "u1", **extra) -> dict:
    response = api.post("/v3/memories/add/", {"messages": text, "user_id": user_id, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_async_add_answers_with_an_event_whose_status_can_be_read(world, api):
    api.as_key(world.acme_key)
    answer = _add(api, "I like tea.", async_mode=True)["results"][0]
    assert answer["status"] == "SUCCEEDED" and answer["status_url"] == f"/v1/events/{answer['event_id']}/"
    event = api.get(answer["status_url"]).json()
    assert event["id"] == answer["event_id"] and event["event_type"] == "memory.add"
    assert event["status"] == "SUCCEEDED" and event["memory_ids"] == [m["id"] for m in answer["memories"]]
    assert event["user_id"] == "u1" and event["app_id"] == "concierge_app" and event["actor"] == "key:acme-server"
    assert "I like tea" not in str(event)  # ids and counts, never memory text
    assert _add(api, "No event asked for.")["results"][0]["event"] == "ADD"  # the synchronous shape is unchanged


def test_feed_lists_changes_not_reads_and_filters(world, api):
    api.as_key(world.acme_key)
    first = _add(api, "one")["results"][0]["id"]
    _add(api, "two", user_id="u2", app_id="sports_portal")
    api.put(f"/v1/memories/{first}/", {"text": "one, changed"}, format="json")
    api.post("/v3/memories/", {"filters": {"user_id": "u1"}}, format="json")  # a read: audited, not activity
    api.delete("/v1/memories/?user_id=u1")
    feed = api.get("/v1/events/").json()
    assert [e["event_type"] for e in feed["results"]] == [
        "memory.delete_matching",
        "memory.update",
        "memory.add",
        "memory.add",
    ]
    assert feed["count"] == 4 and feed["next"] is None
    assert [e["event_type"] for e in api.get("/v1/events/", {"action": "memory.update"}).json()["results"]] == [
        "memory.update"
    ]
    assert {e["user_id"] for e in api.get("/v1/events/", {"user_id": "u2"}).json()["results"]} == {"u2"}
    assert api.get("/v1/events/", {"app_id": "sports_portal"}).json()["count"] == 1
    assert api.get("/v1/events/", {"category": "exports"}).json()["count"] == 0
    assert api.get("/v1/events/", {"date_from": "2999-01-01"}).json()["count"] == 0
    paged = api.get("/v1/events/", {"page_size": 3}).json()
    assert len(paged["results"]) == 3 and "page=2" in paged["next"] and "page_size=3" in paged["next"]
    assert len(api.get(paged["next"]).json()["results"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"category": "reads"},
        {"action": "memory.list"},
        {"page_size": 0},
        {"page_size": 201},
        {"page_size": "x"},
        {"page": 0},
        {"page": 99},
        {"date_from": "2024-02-30"},
        {"date_from": "2025-02-02", "date_to": "2025-02-01"},
        {"user_id": "x" * 129},
    ],
)
def test_bad_filters_are_400(world, api, query):
    api.as_key(world.acme_key)
    _add(api, "one")
    response = api.get("/v1/events/", query)
    assert response.status_code == 400 and response.json()["error"]["field"], response.content


def test_restricted_key_sees_its_apps_events_only(world, api):
    api.as_key(world.acme_key)
    _add(api, "in sports", app_id="sports_portal")
    _add(api, "in concierge")
    restricted = world.make_key(world.acme, name="concierge-only", apps=[world.acme_concierge])
    api.as_key(restricted)
    assert {e["app_id"] for e in api.get("/v1/events/").json()["results"]} == {"concierge_app"}
    api.as_key(world.globex_key)
    assert api.get("/v1/events/").json()["count"] == 0


def test_a_requested_job_reads_as_its_jobs_state(world, api):
    row = TenantAPIKey.objects.get(name="acme-server")
    job = Job.objects.create(
        kind=Job.Kind.ERASE_USER, tenant=world.acme, requested_by="key:acme-server", params={"user_id": "u1"}
    )
    audit_record(
        scope=scope_for_api_key(row),
        action="user.erase_requested",
        user_id="u1",
        details={"job": str(job.pk), "kind": job.kind},
    )
    event_id = AuditEvent.objects.get(action="user.erase_requested").event_id
    api.as_key(world.acme_key)
    assert api.get(f"/v1/events/{event_id}/").json()["status"] == "PENDING"
    Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED)
    event = api.get(f"/v1/events/{event_id}/").json()
    assert event["status"] == "FAILED" and event["details"] == {"job": str(job.pk), "kind": job.kind}


def test_events_of_other_kinds_are_not_in_the_feed(world, api):
    row = TenantAPIKey.objects.get(name="acme-server")
    audit_record(scope=scope_for_api_key(row), action="link.issue", user_id="u1")
    event_id = AuditEvent.objects.get(action="link.issue").event_id
    api.as_key(world.acme_key)
    assert api.get("/v1/events/").json()["count"] == 0
    assert api.get(f"/v1/events/{event_id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_official_client_async_add_and_its_event(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    answer = client.add("I fly economy.", user_id="u_async", async_mode=True)["results"][0]
    assert answer["status"] == "SUCCEEDED"
    event = client.client.get(answer["status_url"]).json()  # the 2.2.1 client has no events method
    assert event["status"] == "SUCCEEDED" and event["memory_ids"] == [answer["memories"][0]["id"]]
    assert client.get(event["memory_ids"][0])["memory"] == "I fly economy."
