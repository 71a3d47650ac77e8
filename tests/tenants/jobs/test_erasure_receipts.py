"""Erasure jobs (a large erasure, an end user's own delete-all, retention, offboarding, a cancelled erasure) each
leave exactly one signed erasure receipt, beside the job's own receipt, with the job's counts and no text."""

import json

from django.test import override_settings

from memadmin.memory import receipts
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import erasure_request, job_erase_user, job_offboard_app
from tenants.links import data_link_issue
from tenants.models import RetentionPolicy
from tenants.scoping import scope_for_end_user


def _only(job: Job) -> ErasureReceipt:
    job.refresh_from_db()
    assert ErasureReceipt.objects.count() == 1
    receipt = ErasureReceipt.objects.get()
    assert job.receipt["erasure_receipt_id"] == str(receipt.pk) and receipt.job_id == job.pk
    assert receipt.memories == job.receipt["totals"]["memories"] and receipt.verification["remaining"] == 0
    document = receipts.receipt_document(receipt)
    assert receipts.receipt_verify(document)["job_id"] == str(job.pk)
    assert "memory number" not in json.dumps(document)  # the loaded memories' text
    return receipt


@override_settings(MEMADMIN_ERASURE_SYNC_LIMIT=5)
def test_a_large_erasure_job(world, load):
    load(world.concierge, 100, users=5)
    load(world.sports, 50, users=5)
    job = erasure_request(scope=world.scope(world.support), filters=filter_from_fields(user_id="user-1"))
    assert isinstance(job, Job) and ErasureReceipt.objects.count() == 0  # nothing erased yet, no receipt
    assert run_job(job.pk) == Job.State.SUCCEEDED
    receipt = _only(job)
    assert (receipt.kind, receipt.user_id, receipt.actor_kind, receipt.role) == ("user", "user-1", "staff", "support")
    assert {app: line["memories"] for app, line in receipt.per_app.items()} == {
        "concierge_app": 20,
        "sports_portal": 10,
    }
    assert receipt.per_app["concierge_app"]["history_rows"] == 20
    assert receipt.verification["per_app"] == {"concierge_app": "index", "sports_portal": "index"}


@override_settings(MEMADMIN_ERASURE_SYNC_LIMIT=5)
def test_an_end_users_own_delete_all_as_a_job(world, load):
    load(world.concierge, 100, users=5)
    link, _ = data_link_issue(scope=world.scope(), user_id="user-2")
    scope = scope_for_end_user(link)
    job = erasure_request(scope=scope, filters=filter_from_fields(user_id="user-2"))
    assert run_job(job.pk) == Job.State.SUCCEEDED
    receipt = _only(job)
    assert (receipt.kind, receipt.actor, receipt.actor_kind) == ("own_data", "enduser:user-2", "enduser")
    assert receipts.receipt_get(scope=scope, receipt_id=receipt.pk) == receipt


def test_retention(world, load):
    load(world.concierge, 30)
    params = {"app_id": "concierge_app", "max_age_days": 1}
    job = Job.objects.create(
        kind="retention", tenant=world.acme, app=world.concierge, requested_by="retention-policy", params=params
    )
    RetentionPolicy.objects.create(app=world.concierge, max_age_days=1)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    receipt = _only(job)
    assert (receipt.kind, receipt.actor_kind, receipt.memories) == ("retention", "system", 30)
    assert receipt.scope["policy"] == {"max_age_days": 1}


def test_offboarding(world, load):
    load(world.sports, 40)
    job, _ = job_offboard_app(scope=world.scope(), app_id="sports_portal", grace_hours=0)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    receipt = _only(job)
    assert (receipt.kind, receipt.actor_kind, receipt.memories) == ("offboard", "staff", 40)
    assert receipt.per_app["sports_portal"]["memories"] == 40


def test_a_cancelled_erasure_that_had_deleted_nothing_leaves_no_receipt(world, load):
    from tenants.jobs.services import job_cancel

    load(world.concierge, 10)
    job, _ = job_erase_user(scope=world.scope(world.support), user_id="user-1")
    job_cancel(scope=world.scope(world.support), job=job)
    assert run_job(job.pk) == "skipped" and ErasureReceipt.objects.count() == 0


@override_settings(MEMADMIN_ERASURE_SYNC_LIMIT=5)
def test_the_job_page_and_the_your_data_page_link_the_signed_receipt(client, world, load):
    load(world.concierge, 50, users=5)
    link, path = data_link_issue(scope=world.scope(), user_id="user-2")
    job = erasure_request(scope=scope_for_end_user(link), filters=filter_from_fields(user_id="user-2"))
    assert run_job(job.pk) == Job.State.SUCCEEDED
    receipt = _only(job)
    html = client.get(path).content.decode()
    assert f"{path}receipts/{receipt.pk}/receipt.json" in html
    client.force_login(world.support.user)
    html = client.get(f"/t/acme/jobs/{job.pk}/").content.decode()
    assert 'data-testid="signed-receipt"' in html and f"/t/acme/erasures/{receipt.pk}/receipt.json" in html


def test_an_erasure_cancelled_halfway_leaves_a_cancelled_receipt_of_what_it_deleted(world, load, monkeypatch):
    from tenants.jobs import runners

    load(world.concierge, 100, users=5)
    job, _ = job_erase_user(scope=world.scope(world.support), user_id="user-1")
    Job.objects.filter(pk=job.pk).update(params={**job.params, "batch_size": 5})
    save = runners.Run.save

    def cancel_after_first_batch(run, cursor=None, **fields):
        save(run, cursor, **fields)
        if run.done >= 5:  # support cancels while the worker deletes
            Job.objects.filter(pk=run.job.pk).update(state=Job.State.CANCELLED)

    monkeypatch.setattr(runners.Run, "save", cancel_after_first_batch)
    assert run_job(job.pk) == "lost"
    job.refresh_from_db()
    receipt = ErasureReceipt.objects.get()
    assert job.receipt["erasure_receipt_id"] == str(receipt.pk) and receipt.status == "cancelled"
    assert 5 <= receipt.memories < 20 and receipt.verification["remaining"] is None
    assert receipts.receipt_verify(receipts.receipt_document(receipt))["status"] == "cancelled"
