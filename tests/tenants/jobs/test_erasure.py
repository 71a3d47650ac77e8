"""Erasure at scale: per-person work never walks other keys, an unhealthy index falls back to a
SCAN job, and a large erasure is a resumable job with a receipt."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from memadmin.memory import bulk, consistency, index, selectors, services
from memadmin.memory.errors import Conflict
from memadmin.memory.filters import filter_from_fields
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.selectors import erasure_latest
from tenants.jobs.services import erasure_request, job_cancel, job_erase
from tenants.jobs.sweep import index_consistency_sweep
from tenants.links import data_link_issue
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_end_user
from tests.memadmin.memory.rawhash import put
from tests.support.jobs import keys_of
from tests.support.stores import on_both_stores
from tests.support.worker import job_state, wait_for


def user_keys(raw_valkey, app, user_id: str) -> int:
    """Keys of one user in an app, by SCAN and HGET: what the index may have missed included."""
    return sum(
        1
        for key in raw_valkey.scan_iter(match=f"mem0:{app.collection_name}:*", count=1000)
        if raw_valkey.hget(key, "user_id") == user_id.encode()
    )


def scan_calls(raw_valkey) -> int:
    return int(raw_valkey.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


@on_both_stores
def test_unindexable_hash_is_found_by_the_monitor_and_the_erasure_falls_back_to_a_scan(world, load, acme_valkey):
    load(world.concierge, 200, users=10)
    # A vector of the wrong dimension: the index refuses the hash, so no FT.SEARCH can ever find it.
    put(acme_valkey, world.concierge.collection_name, user_id="user-3", embedding=b"\x00" * 12)
    scope = world.scope()
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="user-3")) == 20
    assert user_keys(acme_valkey, world.concierge, "user-3") == 21

    report = index_consistency_sweep(budget_seconds=60)
    assert "not in the index" in report[world.concierge.collection_name]
    assert report[world.sports.collection_name] == "healthy"
    health = consistency.index_health(place=world.concierge.app_ref().place)
    assert not health.healthy and health.missing == 1 and health.keys == 201
    with pytest.raises(CommandError):  # manage.py output flags it, and the exit status is 1
        call_command("index_health", "--tenant", "acme")

    job = erasure_request(scope=scope, filters=filter_from_fields(user_id="user-3"))
    assert isinstance(job, Job) and job.params["reason"] == "index_unhealthy"
    assert user_keys(acme_valkey, world.concierge, "user-3") == 21  # the request itself deleted nothing
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    line = job.receipt["per_app"]["concierge_app"]
    assert (line["memories"], line["unindexed"], line["remaining"], line["verification"]) == (21, 1, 0, "scan")
    assert job.receipt["per_app"]["sports_portal"]["verification"] == "index"
    assert user_keys(acme_valkey, world.concierge, "user-3") == 0
    assert keys_of(acme_valkey, world.concierge) == 180

    # The next pass finds nothing missing: the app is healthy again and erasures are immediate.
    assert consistency.consistency_check(place=world.concierge.app_ref().place).healthy
    result = erasure_request(scope=scope, filters=filter_from_fields(user_id="user-4"))
    assert result.deferred is None and result.deleted == 20 and result.remaining == 0


def test_hashes_the_index_silently_missed_are_reindexed_by_the_monitor(world, load, raw_valkey):
    load(world.concierge, 50)
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    # An index that never read the keys already there (mem0 #3948's symptom): SKIPINITIALSCAN.
    raw_valkey.execute_command("FT.DROPINDEX", collection)
    memory_id = put(raw_valkey, collection, user_id="late")
    command = index.schema(collection, algorithm="flat")
    at = command.index("SCHEMA")
    raw_valkey.execute_command(*command[:at], "SKIPINITIALSCAN", *command[at:])
    assert selectors.memory_count(scope=world.scope(), filters=filter_from_fields(user_id="late")) == 0

    health = consistency.consistency_check(place=place)
    assert health.healthy and (health.keys, health.repaired, health.missing) == (51, 51, 0)
    assert selectors.memory_get(scope=world.scope(), memory_id=memory_id, audit=False).user_id == "late"


def test_per_person_operations_never_scan_beside_another_tenants_20000_memories(world, load, raw_valkey):
    load(world.globex_app, 20_000, users=200, history=False)
    load(world.concierge, 500, users=25, runs=50)
    load(world.sports, 100, users=25, runs=10, seed=7)
    globex_before = keys_of(raw_valkey, world.globex_app)
    scope = world.scope()
    api = APIClient()
    _, key = TenantAPIKey.objects.create_key(name="acme-server", tenant=world.acme)
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    one_memory = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="user-9")).items[0]

    _link, your_data = data_link_issue(scope=scope, user_id="user-6")
    staff = Client()
    staff.force_login(world.admin.user)
    raw_valkey.config_resetstat()

    result = erasure_request(scope=scope, filters=filter_from_fields(user_id="user-7"))  # the service itself
    assert result.deferred is None and result.deleted == 24 and result.remaining == 0
    response = staff.post("/t/acme/user/delete/", {"user_id": "user-1", "confirm_user_id": "user-1"}, follow=True)
    assert response.redirect_chain[0][1] == 302  # post-redirect-get, to the person's page with the counts
    assert response.status_code == 200 and 'data-testid="remaining">0<' in response.content.decode()  # dashboard
    response = Client().post(your_data + "delete-all/", {"confirm": "on"})  # the end user's own delete-all
    assert response.status_code in (200, 302), response.content[:300]
    response = api.delete("/v1/memories/?user_id=user-2")  # delete_all(user_id=)
    assert response.status_code == 200 and response.json()["deleted"] == 24, response.content
    response = api.delete("/v2/entities/user/user-3/")
    assert response.status_code == 200 and response.json()["remaining"] == 0
    response = api.delete("/v1/memories/?run_id=run-5")  # a run (close_ticket)
    assert response.status_code == 200 and response.json()["deleted"] > 0
    assert services.memory_delete(scope=scope, memory_id=one_memory.id).deleted == 1  # one memory
    exported = list(selectors.memory_export(scope=scope, filters=filter_from_fields(user_id="user-4")))
    assert len(exported) == 24
    response = staff.get("/t/acme/user/export/", {"user_id": "user-8", "format": "json"})  # dashboard export
    assert len(json.loads(b"".join(response.streaming_content))) == 24

    assert scan_calls(raw_valkey) == 0, "a per-person operation walked the keyspace"
    assert keys_of(raw_valkey, world.globex_app) == globex_before == 20_000
    for user in ("user-1", "user-2", "user-3", "user-6", "user-7"):
        assert user_keys(raw_valkey, world.concierge, user) == 0
        assert user_keys(raw_valkey, world.sports, user) == 0


@pytest.mark.django_db(transaction=True)
def test_large_erasure_is_a_job_that_survives_sigkill_with_a_receipt(world, load, raw_valkey, worker, settings):
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 5000
    first = worker()
    load(world.concierge, 12_000, users=1, runs=20)
    load(world.sports, 300, users=3, seed=5)  # user-0 has 100 here; the others must survive
    scope = world.scope()

    job = erasure_request(scope=scope, filters=filter_from_fields(user_id="user-0"))
    assert isinstance(job, Job) and job.params["reason"] == "large"
    assert erasure_latest(scope=scope, user_id="user-0").pk == job.pk  # what the your-data page shows
    wait_for(lambda: job_state(job).done >= 1000, 90, "the worker to delete a first part")
    first.kill()
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and 0 < job.done < 12_100, "the kill must land mid-erasure"

    worker()  # a new worker: the sweep sees the stale lease and sends the job again
    wait_for(lambda: job_state(job).state in ("succeeded", "failed"), 180, "the job to finish", interval=0.2)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.progress["attempts"] >= 2
    lines = job.receipt["per_app"]
    assert lines["concierge_app"]["memories"] == 12_000 and lines["sports_portal"]["memories"] == 100
    assert job.receipt["remaining"] == 0 and job.done == 12_100
    assert user_keys(raw_valkey, world.concierge, "user-0") == 0
    assert keys_of(raw_valkey, world.sports) == 200


@pytest.mark.parametrize("caller", ["app_restricted_key", "end_user_link"])
def test_an_erasure_job_stays_in_the_requesters_apps(world, load, raw_valkey, settings, caller):
    """A deferred erasure acts on the apps of whoever asked, not on every app of the tenant."""
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 5  # 20 memories: a job
    load(world.concierge, 20, users=1)
    load(world.sports, 20, users=1, seed=5)
    if caller == "app_restricted_key":
        row, key = TenantAPIKey.objects.create_key(name="concierge-only", tenant=world.acme)
        row.apps.set([world.concierge])
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = api.delete("/v1/memories/?user_id=user-0")
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["job_id"])
    else:
        link, _ = data_link_issue(scope=world.scope(), user_id="user-0")
        link.apps.set([world.concierge])  # as if issued by a concierge-only key
        job = erasure_request(scope=scope_for_end_user(link), filters=filter_from_fields(user_id="user-0"))
        assert isinstance(job, Job)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert list(job.receipt["per_app"]) == ["concierge_app"]
    assert keys_of(raw_valkey, world.concierge) == 0
    assert keys_of(raw_valkey, world.sports) == 20  # outside the requester's apps: untouched

    # The same filters from a tenant-wide caller are another job, not the restricted one's.
    again, created = job_erase(scope=world.scope(), filters=filter_from_fields(user_id="user-0"))
    assert created and again.pk != job.pk


def test_an_index_nobody_has_counted_cannot_vouch_for_an_erasure(world, load, raw_valkey):
    """An index made outside memadmin with SKIPINITIALSCAN (mem0 #3948's shape) has neither a monitor pass
    nor its own initial count: the erasure is not "verified" on its word, it goes to the SCAN job."""
    load(world.concierge, 50)
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    assert consistency.index_health(place=place).healthy  # ensure() made it: its own scan counted
    raw_valkey.execute_command("FT.DROPINDEX", collection)
    index.forget(place)
    late = put(raw_valkey, collection, user_id="late")
    command = index.schema(collection, algorithm="flat")
    at = command.index("SCHEMA")
    raw_valkey.execute_command(*command[:at], "SKIPINITIALSCAN", *command[at:])

    health = consistency.index_health(place=place, max_age=0)
    assert not health.healthy and "has not checked this app yet" in " ".join(health.reasons)
    job = erasure_request(scope=world.scope(), filters=filter_from_fields(user_id="late"))
    assert isinstance(job, Job) and job.params["reason"] == "index_unhealthy"
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    line = job.receipt["per_app"]["concierge_app"]
    assert (line["memories"], line["remaining"], line["verification"]) == (1, 0, "scan")
    assert not raw_valkey.exists(f"mem0:{collection}:{late}")


@on_both_stores
def test_an_offboardings_stand_in_index_cannot_vouch_for_an_erasure(world, load, acme_valkey):
    """Offboarding swaps the app's index for an empty one first; an erasure meanwhile (or after the
    offboarding failed) must not read its "0 memories" as proof."""
    load(world.concierge, 40, users=2)
    place = world.concierge.app_ref().place
    consistency.index_health(place=place)  # figures cached from the real index
    bulk.swap_to_placeholder(place)
    job = erasure_request(scope=world.scope(), filters=filter_from_fields(user_id="user-0"))
    assert isinstance(job, Job) and job.params["reason"] == "index_unhealthy"
    assert "stand-in" in " ".join(consistency.index_health(place=place).reasons)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    line = job.receipt["per_app"]["concierge_app"]
    assert (line["memories"], line["remaining"], line["verification"]) == (20, 0, "scan")
    assert user_keys(acme_valkey, world.concierge, "user-0") == 0
    assert user_keys(acme_valkey, world.concierge, "user-1") == 20


def test_an_id_with_a_colon_is_erased_itself_and_never_names_another_key(world, load, raw_valkey):
    """Mem0 OSS agents choose their own ids: key "mem0:<coll>:x:<other id>" is memory "x:<other id>",
    not memory "<other id>" (another person's), in the indexed deletion, the SCAN fallback and the monitor."""
    load(world.concierge, 10)
    collection = world.concierge.collection_name
    place = world.concierge.app_ref().place
    other = put(raw_valkey, collection, user_id="bystander")
    for victim, via in (("colon-indexed", "index"), ("colon-scanned", "scan")):
        tricky = put(raw_valkey, collection, memory_id=f"x:{other}", user_id=victim)
        if via == "scan":  # a hash the index refuses makes the app unhealthy: the SCAN job runs
            put(raw_valkey, collection, user_id=victim, embedding=b"\x00" * 12)
            assert not consistency.consistency_check(place=place).healthy
        outcome = erasure_request(scope=world.scope(), filters=filter_from_fields(user_id=victim))
        if via == "scan":
            assert isinstance(outcome, Job) and run_job(outcome.pk) == Job.State.SUCCEEDED
            outcome.refresh_from_db()
            assert outcome.receipt["per_app"]["concierge_app"]["remaining"] == 0
        else:
            assert outcome.deferred is None and (outcome.deleted, outcome.remaining) == (1, 0)
        assert not raw_valkey.exists(f"mem0:{collection}:{tricky}")
        assert raw_valkey.exists(f"mem0:{collection}:{other}")  # the bystander's memory is untouched
    assert consistency.consistency_check(place=place).healthy


def test_an_erasure_the_person_asked_for_cannot_be_cancelled_and_a_cancelled_one_shows(world, load, client, settings):
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 5
    load(world.concierge, 20, users=2)
    link, token_path = data_link_issue(scope=world.scope(), user_id="user-0")
    link.apps.set([world.concierge, world.sports])
    own = erasure_request(scope=scope_for_end_user(link), filters=filter_from_fields(user_id="user-0"))
    with pytest.raises(Conflict, match="asked for by the person"):
        job_cancel(scope=world.scope(world.support), job=own)

    # A staff member's erasure can be cancelled; the person's page then says so instead of going quiet.
    Job.objects.filter(pk=own.pk).update(state=Job.State.SUCCEEDED)
    staff, _ = job_erase(scope=world.scope(world.support), filters=filter_from_fields(user_id="user-0"))
    job_cancel(scope=world.scope(world.support), job=staff)
    page = client.get(token_path).content.decode()
    assert "An erasure was cancelled" in page and "You can ask again below" in page


def test_the_end_users_page_shows_the_erasure_running_then_its_receipt(world, load, raw_valkey, settings):
    """Too large for the request: the person's own delete-all becomes a job, their page says so, and once the
    job is done the same page shows the receipt (deleted, remaining 0), reload after reload."""
    settings.MEMADMIN_ERASURE_SYNC_LIMIT = 50
    load(world.concierge, 80, users=1)
    load(world.sports, 40, users=1, seed=5)
    _link, page = data_link_issue(scope=world.scope(), user_id="user-0")
    person = Client()
    response = person.post(page + "delete-all/", {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == page  # post-redirect-get
    assert "being erased in the background" in person.get(page).content.decode()
    job = Job.objects.get(kind=Job.Kind.ERASE_USER)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    for _ in range(2):
        html = person.get(page).content.decode()
        assert "Your erasure receipt" in html
        assert 'data-testid="receipt-deleted">120<' in html and 'data-testid="receipt-remaining">0<' in html
    assert keys_of(raw_valkey, world.concierge) == keys_of(raw_valkey, world.sports) == 0
