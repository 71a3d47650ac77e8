"""Moving an app between memory stores, run in-process, from the request to the receipt: tenants/jobs/services.py
job_move_app (one job per app, admins only, the app frozen), tenants/jobs/runners.py (_move, postponing other jobs
on a moving app), the resumable engine it drives (memadmin/memory/moves.py) and manage.py move_app.

Two real servers: the session's ("default") and a second one ("second")."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from memadmin.memory import index, moves, selectors, services, store
from memadmin.memory.errors import Conflict, NotFound, PermissionDenied, ValidationError
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import AuditEvent
from tenants.jobs.kinds import move as runners
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import erasure_request, job_cancel, job_erase_user, job_move_app, job_offboard_app
from tenants.models import App
from tests.memadmin.memory.rawhash import put
from tests.support.jobs import keys_of


@pytest.fixture(autouse=True)
def no_settle(settings):
    settings.MEMADMIN_MOVE_SETTLE_SECONDS = 0


@pytest.fixture
def stores(world, two_stores, raw_valkey):
    world.default, world.second = raw_valkey, two_stores.client()
    App.objects.filter(tenant=world.acme).update(store="default")
    return world


def on(client, app) -> int:
    return keys_of(client, app)


def test_move_copies_verifies_switches_and_deletes_the_source(stores, load):
    load(stores.concierge, 1500, runs=20)
    load(stores.sports, 30, seed=3)
    before = selectors.memory_count(scope=stores.scope(), filters=filter_from_fields(app_id="concierge_app"))
    job, created = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    assert created and App.objects.get(pk=stores.concierge.pk).status == "moving"

    assert run_job(job.pk) == Job.State.SUCCEEDED

    job.refresh_from_db()
    app = App.objects.get(pk=stores.concierge.pk)
    assert (app.store, app.status) == ("second", "active")
    assert on(stores.default, stores.concierge) == 0 and on(stores.second, stores.concierge) == 1500
    assert on(stores.default, stores.sports) == 30  # the other app stays where it was
    receipt = job.receipt
    assert receipt["receipt"] == "memadmin move receipt" and receipt["remaining"] == 0 and receipt["verified_at"]
    move = receipt["move"]
    assert (
        move["from"],
        move["to"],
        move["source_keys"],
        move["target_keys"],
        move["target_documents"],
        move["target_indexing_failures"],
        move["source_deleted"],
    ) == ("default", "second", 1500, 1500, 1500, 0, 1500)
    assert job.done == job.total == 1500
    assert "memory number" not in json.dumps(receipt)  # counts, never the text
    # the source keeps nothing about the app: no index, no health, no marker
    with pytest.raises(Exception, match="(?i)unknown index|no such index"):
        stores.default.execute_command("FT.INFO", stores.concierge.collection_name)
    assert not list(stores.default.scan_iter(match=f"memadmin:*{stores.concierge.collection_name}*"))
    # every read and write now goes to the target, with the index healthy there
    scope = stores.scope()
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(app_id="concierge_app")) == before
    services.memory_add(scope=scope, app_id="concierge_app", messages="after the move", user_id="u-new")
    assert on(stores.second, stores.concierge) == 1501 and on(stores.default, stores.concierge) == 0
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="user-1"))
    # proven by a count on the target's healthy index (and on the source's for sports_portal)
    assert result.per_app["concierge_app"]["memories"] == 30 and not result.deferred
    assert AuditEvent.objects.filter(action="app.moved", details__job=str(job.pk)).exists()


def test_and_back_again(stores, load):
    load(stores.concierge, 50)
    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    assert run_job(job.pk) == Job.State.SUCCEEDED
    back, created = job_move_app(scope=stores.scope(), app_id="concierge_app", store="default")
    assert created and run_job(back.pk) == Job.State.SUCCEEDED
    assert on(stores.default, stores.concierge) == 50 and on(stores.second, stores.concierge) == 0


def test_resume_after_an_interruption(stores, load, monkeypatch):
    """A worker killed part-way through the copy: the next run resumes from the saved cursor and ends exact."""
    load(stores.concierge, 1200)
    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    Job.objects.filter(pk=job.pk).update(params={**job.params, "batch_size": 100})

    class Killed(BaseException):
        pass

    real_copy = moves.app_copy

    def dying_progress(save):
        def progress(cursor):
            save(cursor)
            if cursor.get("phase") == "copy" and cursor["copied"] >= 500:
                raise Killed()

        return progress

    def app_copy(**kwargs):
        return real_copy(**{**kwargs, "progress": dying_progress(kwargs["progress"])})

    with monkeypatch.context() as patch:
        patch.setattr(runners, "app_copy", app_copy)
        with pytest.raises(Killed):
            run_job(job.pk)
    job.refresh_from_db()
    cursor = job.progress["cursor"]
    assert cursor["phase"] == "copy" and 500 <= cursor["copied"] < 1200
    assert App.objects.get(pk=stores.concierge.pk).status == "moving"  # still frozen
    assert on(stores.default, stores.concierge) == 1200  # nothing deleted before the copy is proven

    # The lease is stale (the worker died): another worker takes over and resumes.
    Job.objects.filter(pk=job.pk).update(progress={**job.progress, "heartbeat": "2000-01-01T00:00:00+00:00"})
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.receipt["move"]["target_keys"] == 1200 and job.receipt["remaining"] == 0
    assert on(stores.second, stores.concierge) == 1200 and on(stores.default, stores.concierge) == 0


def test_resume_after_the_switch(stores, load):
    """Killed after the app switched to the target but before the source was deleted."""
    load(stores.concierge, 300)
    scope = stores.scope()
    job, _ = job_move_app(scope=scope, app_id="concierge_app", store="second")
    cursor = moves.app_copy(
        scope=stores.scope(), app_id="concierge_app", target="second", cursor={}, progress=lambda c: None
    )
    App.objects.filter(pk=stores.concierge.pk).update(store="second")
    cursor["phase"] = "switched"
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING,
        total=300,
        progress={"cursor": cursor, "owner": "dead", "heartbeat": "2000-01-01T00:00:00+00:00"},
    )
    assert run_job(job.pk) == Job.State.SUCCEEDED
    assert on(stores.second, stores.concierge) == 300 and on(stores.default, stores.concierge) == 0


def test_a_change_on_the_source_during_the_copy_starts_another_pass(stores, load):
    load(stores.concierge, 200)
    calls = {"n": 0}

    def progress(cursor):
        # An agent using Mem0 directly deletes a memory the copy has already taken.
        if cursor.get("phase") == "verify" and calls["n"] == 0:
            calls["n"] += 1
            victim = next(stores.default.scan_iter(match=f"mem0:{stores.concierge.collection_name}:*"))
            stores.default.unlink(victim)

    App.objects.filter(pk=stores.concierge.pk).update(status="moving")
    cursor = moves.app_copy(
        scope=stores.scope(), app_id="concierge_app", target="second", cursor={}, progress=progress, batch_size=50
    )
    assert cursor["pass"] == 2 and cursor["verified"]["target_keys"] == cursor["verified"]["source_keys"] == 199
    assert on(stores.second, stores.concierge) == 199


def test_a_deletion_on_the_source_balanced_by_a_new_memory_is_not_copied_back(stores, load):
    load(stores.concierge, 200)
    collection = stores.concierge.collection_name
    taken = {}

    def progress(cursor):
        # Agents using Mem0 directly: one deletes a memory the copy has taken, another adds one. The counts
        # stay equal (200 and 200); the deleted memory must still not live on in the target.
        if cursor.get("phase") == "verify" and not taken:
            taken["victim"] = next(stores.default.scan_iter(match=f"mem0:{collection}:*"))
            stores.default.unlink(taken["victim"])
            put(stores.default, collection, text="added by an agent during the copy", user_id="u0")

    App.objects.filter(pk=stores.concierge.pk).update(status="moving")
    cursor = moves.app_copy(
        scope=stores.scope(), app_id="concierge_app", target="second", cursor={}, progress=progress, batch_size=50
    )
    assert cursor["pass"] == 2 and cursor["verified"]["target_keys_gone_from_source"] == 0
    assert cursor["verified"]["target_keys"] == cursor["verified"]["source_keys"] == 200
    assert not stores.second.exists(taken["victim"]) and on(stores.second, stores.concierge) == 200


def test_writes_are_refused_and_deletions_wait_during_the_move(stores):
    record = services.memory_add(
        scope=stores.scope(), app_id="concierge_app", messages="Alice likes tea", user_id="alice"
    )[0]
    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    scope = stores.scope()
    with pytest.raises(Conflict, match="being moved") as caught:
        services.memory_add(scope=scope, app_id="concierge_app", messages="new", user_id="alice")
    assert caught.value.details["status"] == "frozen"
    with pytest.raises(Conflict, match="being moved"):
        services.memory_update(scope=scope, memory_id=record.id, text="changed")
    with pytest.raises(Conflict, match="being moved") as caught:
        services.memory_delete(scope=scope, memory_id=record.id)
    assert caught.value.details["status"] == "moving"
    # An erasure asked for meanwhile is accepted as a job, which waits for the move, then runs.
    erasure = erasure_request(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert isinstance(erasure, Job) and erasure.params["reason"] == "moving"
    assert run_job(erasure.pk) == "postponed"
    erasure.refresh_from_db()
    assert erasure.state == Job.State.SCHEDULED and "move" in erasure.progress["postponed"]
    # other apps of the tenant are not frozen
    services.memory_add(scope=scope, app_id="sports_portal", messages="fine", user_id="alice")
    # reads keep working
    assert selectors.memory_get(scope=scope, memory_id=record.id).memory == "Alice likes tea"

    assert run_job(job.pk) == Job.State.SUCCEEDED
    Job.objects.filter(pk=erasure.pk).update(run_after=timezone.now())
    assert run_job(erasure.pk) == Job.State.SUCCEEDED
    assert on(stores.second, stores.concierge) == 0


def test_the_move_waits_for_jobs_already_running_on_the_app(stores, load):
    load(stores.concierge, 10)
    erasure, _ = job_erase_user(scope=stores.scope(), user_id="user-1")
    Job.objects.filter(pk=erasure.pk).update(state=Job.State.RUNNING)
    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    assert run_job(job.pk) == "postponed"
    job.refresh_from_db()
    assert job.state == Job.State.SCHEDULED and "running job" in job.progress["postponed"]
    assert on(stores.second, stores.concierge) == 0


def test_one_move_per_app_and_a_failed_one_resumes(stores, load):
    load(stores.concierge, 10)
    first, created = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    again, created_again = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    assert created and not created_again and first.pk == again.pk
    with pytest.raises(Conflict, match="already being moved"):
        job_move_app(scope=stores.scope(), app_id="concierge_app", store="default")
    Job.objects.filter(pk=first.pk).update(state=Job.State.FAILED, error="store went away")
    resumed, created = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    assert resumed.pk == first.pk and not created and resumed.state == Job.State.SCHEDULED
    assert run_job(resumed.pk) == Job.State.SUCCEEDED


def test_what_cannot_be_moved(stores, load):
    with pytest.raises(ValidationError, match="already on store"):
        job_move_app(scope=stores.scope(), app_id="concierge_app", store="default")
    for hostile in ("nowhere", "", "../second", "second\x00", "SECOND", None, ["second"]):
        with pytest.raises(ValidationError):
            job_move_app(scope=stores.scope(), app_id="concierge_app", store=hostile)
    with pytest.raises(NotFound):
        job_move_app(scope=stores.scope(), app_id="no_such_app", store="second")
    with pytest.raises(NotFound):  # another tenant's app of the same name is not there for acme
        job_move_app(scope=stores.scope(stores.outsider), app_id="sports_portal", store="second")
    for role in ("support", "viewer"):
        with pytest.raises(PermissionDenied):
            job_move_app(scope=stores.scope(getattr(stores, role)), app_id="concierge_app", store="second")
    job_offboard_app(scope=stores.scope(), app_id="sports_portal", grace_hours=24)
    with pytest.raises(Conflict, match="frozen"):
        job_move_app(scope=stores.scope(), app_id="sports_portal", store="second")
    job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    with pytest.raises(Conflict, match="being moved"):
        job_offboard_app(scope=stores.scope(), app_id="concierge_app")
    assert not Job.objects.filter(kind=Job.Kind.MOVE_APP).exclude(app=stores.concierge).exists()


def test_cancel_before_the_copy_unfreezes_and_after_is_refused(stores, load):
    load(stores.concierge, 10)
    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    with pytest.raises(PermissionDenied):
        job_cancel(scope=stores.scope(stores.support), job=job)
    job_cancel(scope=stores.scope(), job=job)
    assert App.objects.get(pk=stores.concierge.pk).status == "active"

    job, _ = job_move_app(scope=stores.scope(), app_id="concierge_app", store="second")
    Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED, progress={"cursor": {"phase": "copy", "copied": 5}})
    job.refresh_from_db()
    with pytest.raises(Conflict, match="cannot be abandoned"):
        job_cancel(scope=stores.scope(), job=job)
    assert App.objects.get(pk=stores.concierge.pk).status == "moving"


def test_a_source_key_written_after_the_copy_is_carried_over(stores, load):
    """An agent writing with Mem0 directly to the old store after the copy: its memory is not lost."""
    load(stores.concierge, 20)
    App.objects.filter(pk=stores.concierge.pk).update(status="moving")
    cursor = moves.app_copy(
        scope=stores.scope(), app_id="concierge_app", target="second", cursor={}, progress=lambda c: None
    )
    collection = stores.concierge.collection_name
    stores.default.hset(f"mem0:{collection}:late", mapping={"memory_id": "late", "memory": "late", "user_id": "u"})
    App.objects.filter(pk=stores.concierge.pk).update(store="second")
    cursor = moves.app_source_drop(scope=stores.scope(), app_id="concierge_app", cursor=cursor, progress=lambda c: None)
    assert cursor["late_copied"] == 1 and cursor["dropped"] == 21 and cursor["remaining"] == 0
    assert stores.second.hget(f"mem0:{collection}:late", "memory") == b"late"


@pytest.mark.django_db(transaction=True)
def test_move_app_command(stores, load, tmp_path):
    load(stores.concierge, 400)
    out, receipt = io.StringIO(), tmp_path / "receipt.json"
    call_command(
        "move_app",
        "acme",
        "concierge_app",
        "second",
        "--yes",
        "--receipt",
        str(receipt),
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "Moved acme/concierge_app from default to second: 400 memories" in out.getvalue()
    assert json.loads(receipt.read_text())["move"]["target_documents"] == 400
    assert on(stores.second, stores.concierge) == 400 and on(stores.default, stores.concierge) == 0
    with pytest.raises(CommandError, match="No store 'elsewhere'"):
        call_command("move_app", "acme", "concierge_app", "elsewhere", "--yes")
    with pytest.raises(CommandError, match="No app"):
        call_command("move_app", "acme", "../etc", "second", "--yes")
    # Where the app lives is its row's word, handed down with its ref: the second server holds its index.
    place = App.objects.get(pk=stores.concierge.pk).app_ref().place
    assert place == store.Place("second", stores.concierge.collection_name)
    assert index.inspect(place).num_docs == 400
