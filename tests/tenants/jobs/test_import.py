"""Importing a file into an app, run in-process, from the request to the receipt: tenants/jobs/services.py
job_import, tenants/jobs/runners.py _import, the file reader tenants/import_files.py, the memory service's
memadmin/memory/imports.py, and manage.py import_mem0. The dashboard's upload is in
tests/tenants/views/test_imports.py, hostile files in tests/security/test_imports.py."""

import gzip
import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound, PermissionDenied, ValidationError
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import AuditEvent
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_export, job_import, job_offboard_app
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.factories import AppFactory
from tests.support.jobs import keys_of
from tests.support.stores import on_both_stores


def _export_of(scope, app_id: str) -> list[dict]:
    items = selectors.memory_export(scope=scope, filters=filter_from_fields(app_id=app_id), audit=False)
    return sorted(({k: v for k, v in item.items() if k != "app_id"} for item in items), key=lambda i: i["id"])


def _write(tmp_path, name: str, rows, *, ndjson: bool = True) -> str:
    path = tmp_path / name
    if ndjson:
        path.write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return str(path)


def _import(world, tmp_path, app_id, rows, *, ndjson=True, skip_invalid=False, name="import.ndjson", **params):
    path = _write(tmp_path, name, rows, ndjson=ndjson)
    job = job_import(
        scope=world.scope(), app_id=app_id, source=tmp_path / name, filename=name, skip_invalid=skip_invalid
    )
    if params:
        Job.objects.filter(pk=job.pk).update(params={**job.params, **params})
    run_job(job.pk)
    job.refresh_from_db()
    assert path
    return job


def _memory(i: int, **extra) -> dict:
    return {"id": f"mem-{i}", "memory": f"fact number {i}", "user_id": f"u{i % 3}", **extra}


@on_both_stores
@pytest.mark.django_db(transaction=True)
def test_export_offboard_import_round_trip(world, load, tmp_path, acme_valkey):
    """The done-when test: export an app, offboard it, import the file into a new app: same count, ids,
    texts, users/agents/runs, metadata, timestamps and Mem0 history."""
    scope = world.scope()
    load(world.concierge, 300)
    added = services.memory_add(
        scope=scope,
        app_id="concierge_app",
        messages="I am vegetarian.",
        user_id="alice",
        agent_id="chef",
        run_id="dinner-1",
        metadata={"source": "chat"},
    )
    services.memory_update(scope=scope, memory_id=added[0].id, text="I am vegan now.")  # an UPDATE history row
    before = _export_of(scope, "concierge_app")
    assert len(before) == 301
    assert [h["event"] for h in next(i for i in before if i["id"] == added[0].id)["history"]] == ["ADD", "UPDATE"]

    export = job_export(scope=scope, app_id="concierge_app", fmt="ndjson", compress=True)
    assert run_job(export.pk) == Job.State.SUCCEEDED
    export.refresh_from_db()
    offboard, _ = job_offboard_app(scope=scope, app_id="concierge_app")
    assert run_job(offboard.pk) == Job.State.SUCCEEDED
    assert keys_of(acme_valkey, world.concierge) == 0

    out = io.StringIO()
    call_command(
        "import_mem0", "acme", "concierge_v2", export.result_file, "--create", stdout=out, stderr=io.StringIO()
    )
    assert "Imported 301 memories and 302 history rows" in out.getvalue()
    new_scope = scope_for_membership(world.admin)
    after = _export_of(new_scope, "concierge_v2")
    assert after == before  # ids, texts, ids of people, metadata, timestamps, hashes and history rows, exactly
    job = Job.objects.get(kind=Job.Kind.IMPORT_APP)
    assert job.receipt["import"]["imported"] == 301 and job.receipt["receipt"] == "memadmin import receipt"
    assert job.receipt["import"]["sha256"] == export.receipt["export"]["sha256"]
    # Embeddings were recomputed: the imported memory is found by meaning.
    hits = selectors.memory_search(
        scope=new_scope, query="diet without animal products", filters=filter_from_fields(user_id="alice"), top_k=1
    )
    assert hits[0].id == added[0].id
    assert AuditEvent.objects.filter(action="import.completed", count=301).exists()


@pytest.mark.django_db(transaction=True)
def test_platform_get_all_shapes(world, tmp_path):
    """mem0 MemoryClient.get_all: a list (v2 client) or {"results": [...]} (a page; get_memory_export too)."""
    platform = {
        "id": "0b7bc8c1-4e5f-4a3c-9d7f-3d1c2b6f1a10",
        "memory": "Prefers window seats",
        "user_id": "alex",
        "agent_id": "travel",
        "app_id": "somewhere-else",
        "run_id": None,
        "hash": "5f0e2c1b4a9e8d7c6b5a4f3e2d1c0b9a",
        "metadata": {"source": "booking"},
        "categories": ["travel", "preferences"],
        "immutable": False,
        "expiration_date": None,
        "created_at": "2024-07-20T01:52:00.123456-07:00",
        "updated_at": "2024-08-01T10:00:00Z",
        "owner": "org-x",
        "organization": "org-x",
        "input": [],
    }
    second = {**platform, "id": "c1", "memory": "Vegetarian", "hash": None, "categories": None, "metadata": None}
    job = _import(world, tmp_path, "concierge_app", {"results": [platform]}, ndjson=False, name="page.json")
    assert job.state == Job.State.SUCCEEDED, job.error
    job2 = _import(world, tmp_path, "sports_portal", [second], ndjson=False, name="list.json")
    assert job2.state == Job.State.SUCCEEDED, job2.error
    record = selectors.memory_get(scope=world.scope(), memory_id=platform["id"])
    assert (record.app_id, record.memory, record.user_id, record.agent_id, record.run_id) == (
        "concierge_app",
        "Prefers window seats",
        "alex",
        "travel",
        None,
    )
    assert record.metadata == {"source": "booking", "categories": ["travel", "preferences"]}
    assert record.hash == platform["hash"]
    assert record.created_at.isoformat() == "2024-07-20T08:52:00+00:00"
    assert record.updated_at.isoformat() == "2024-08-01T10:00:00+00:00"
    assert job.receipt["import"]["format"] == "json" and job.receipt["import"]["imported"] == 1
    other = selectors.memory_get(scope=world.scope(), memory_id="c1")
    assert other.app_id == "sports_portal" and other.hash == hashlib.md5(b"Vegetarian").hexdigest()  # Mem0's hash


@pytest.mark.django_db(transaction=True)
def test_duplicates_are_skipped_and_counted(world, tmp_path):
    services.memory_add(scope=world.scope(), app_id="concierge_app", messages="fact number 1", user_id="u1")
    existing = selectors.memory_list(scope=world.scope(), filters=filter_from_fields(user_id="u1")).items[0]
    rows = [
        _memory(2),
        _memory(2),  # the same id twice in the file
        {**_memory(3), "id": existing.id},  # an id already stored
        _memory(1),  # the text u1 already has (Mem0's hash), another id
        {**_memory(4), "user_id": "u2"},  # the same text for another user is not a duplicate
        {**_memory(5), "user_id": "u2", "id": "x5"},
        {**_memory(5), "user_id": "u2", "id": "y5"},  # same text twice
    ]
    job = _import(world, tmp_path, "concierge_app", rows, batch_size=2)
    assert job.state == Job.State.SUCCEEDED, job.error
    summary = job.receipt["import"]
    assert summary["duplicates"] == {"same_id": 2, "same_hash": 2}
    assert summary["imported"] == 3 and job.done == job.total == 7
    assert job.receipt["per_app"]["concierge_app"]["memories"] == 3 == job.receipt["totals"]["memories"]
    assert selectors.memory_count(scope=world.scope(), filters=filter_from_fields(app_id="concierge_app")) == 4
    # Importing the same file again adds nothing.
    again = _import(world, tmp_path, "concierge_app", rows, name="again.ndjson")
    assert again.receipt["import"]["imported"] == 0
    assert again.receipt["import"]["duplicates"] == {"same_id": 5, "same_hash": 2}


@pytest.mark.django_db(transaction=True)
def test_malformed_rows_refuse_the_whole_file_by_default(world, tmp_path):
    rows = [
        _memory(1),
        "{not json",
        {**_memory(2), "user_id": None},
        _memory(3),
        {**_memory(4), "metadata": {"user_id": "victim"}},
        "",
        {**_memory(5), "id": "a\u202egpj.exe"},
        {**_memory(6), "created_at": "yesterday"},
    ]
    job = _import(world, tmp_path, "concierge_app", rows)
    assert job.state == Job.State.FAILED
    assert "5 of 7 rows are malformed, so nothing was imported" in job.error
    bad = {b["at"]: b["reason"] for b in job.receipt["import"]["malformed_rows"]}
    assert sorted(bad) == [2, 3, 5, 7, 8]  # line numbers of the file (line 6 is blank)
    assert "JSON parse error" in bad[2] and "user_id is required" in bad[3]
    assert "reserved keys: user_id" in bad[5] and "U+202E" in bad[7] and "not an ISO 8601 date" in bad[8]
    assert job.receipt["status"] == "refused" and job.receipt["import"]["imported"] == 0
    assert selectors.memory_count(scope=world.scope(), filters=filter_from_fields(app_id="concierge_app")) == 0

    skipping = _import(world, tmp_path, "concierge_app", rows, skip_invalid=True, name="again.ndjson")
    assert skipping.state == Job.State.SUCCEEDED
    summary = skipping.receipt["import"]
    assert summary["imported"] == 2 and summary["malformed"] == 5 and summary["malformed_unit"] == "line"
    assert [b["at"] for b in summary["malformed_rows"]] == [2, 3, 5, 7, 8]
    assert selectors.memory_count(scope=world.scope(), filters=filter_from_fields(app_id="concierge_app")) == 2


@pytest.mark.django_db(transaction=True)
def test_resumes_after_a_crash_between_journal_and_write(world, tmp_path, monkeypatch):
    """A worker killed after journaling a batch: the next run writes exactly that batch and counts it once."""
    from tenants.jobs.kinds import imports as runners

    rows = [_memory(i, user_id="u") for i in range(7)]
    real = runners.memory_import_write
    calls = {"n": 0}

    def dies_on_second_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            real(**{**kwargs, "rows": kwargs["rows"][:1]})  # part of the batch reached the store
            raise KeyboardInterrupt  # the worker is gone (not an error the job handles)
        return real(**kwargs)

    monkeypatch.setattr(runners, "memory_import_write", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        _import(world, tmp_path, "concierge_app", rows, batch_size=3)
    job = Job.objects.get(kind=Job.Kind.IMPORT_APP)
    assert job.progress["cursor"]["pending"]["until"] == 6
    Job.objects.filter(pk=job.pk).update(progress={**job.progress, "heartbeat": "2000-01-01T00:00:00+00:00"})
    monkeypatch.setattr(runners, "memory_import_write", real)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.receipt["import"]["imported"] == 7 and job.receipt["import"]["duplicates"]["same_id"] == 0
    assert selectors.memory_count(scope=world.scope(), filters=filter_from_fields(app_id="concierge_app")) == 7


@pytest.mark.django_db(transaction=True)
def test_who_may_import(world, tmp_path):
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps(_memory(1)) + "\n")
    for member in (world.viewer, world.support):
        with pytest.raises(PermissionDenied):
            job_import(scope=scope_for_membership(member), app_id="concierge_app", source=path, filename="x")
    with pytest.raises(NotFound):  # another tenant's app does not exist here
        job_import(scope=scope_for_membership(world.outsider), app_id="sports_portal", source=path, filename="x")
    App.objects.filter(pk=world.sports.pk).update(status=App.Status.FROZEN)
    with pytest.raises(Exception, match="frozen"):
        job_import(scope=world.scope(), app_id="sports_portal", source=path, filename="x")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_file_limits(world, tmp_path, settings):
    settings.MEMADMIN_IMPORT_MAX_MB = 1
    big = tmp_path / "big.ndjson"
    big.write_bytes(b" " * (1024 * 1024 + 1))
    with pytest.raises(ValidationError, match="at most 1 MB"):
        job_import(scope=world.scope(), app_id="concierge_app", source=big, filename="big.ndjson")
    bomb = tmp_path / "bomb.ndjson.gz"
    bomb.write_bytes(gzip.compress(b"\n" * (3 * 1024 * 1024)))  # 3 KB that unpack to 3 MB
    job = job_import(scope=world.scope(), app_id="concierge_app", source=bomb, filename="bomb.ndjson.gz")
    run_job(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "more than 1 MB once unpacked" in job.error


@pytest.mark.django_db(transaction=True)
def test_command_refusals(world, tmp_path):
    path = tmp_path / "rows.ndjson"
    path.write_text(json.dumps(_memory(1)) + "\n{broken\n")
    with pytest.raises(CommandError, match="pass --create"):
        call_command("import_mem0", "acme", "nope", str(path))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 rows are malformed"):
        call_command("import_mem0", "acme", "concierge_app", str(path), stdout=io.StringIO(), stderr=err)
    assert "line 2: JSON parse error" in err.getvalue()
    out = io.StringIO()
    call_command("import_mem0", "acme", "concierge_app", str(path), "--skip-invalid", stdout=out, stderr=err)
    assert "Imported 1 memories" in out.getvalue() and "1 malformed" in out.getvalue()
    AppFactory(tenant=world.acme, app_id="old", status=App.Status.OFFBOARDED)
    with pytest.raises(CommandError, match="offboarded"):
        call_command("import_mem0", "acme", "old", str(path))
