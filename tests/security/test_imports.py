"""Hostile import files (tenants/import_files.py, memadmin/memory/imports.py, the import job): every row is checked
like an API write, a file that cannot be read is refused whole, nothing crosses into another tenant or scope,
and what a row says about itself (app_id, identity in metadata, another memory's history) moves nothing."""

import gzip
import json

import pytest
from django.urls import reverse

from memadmin.memory import selectors, services
from memadmin.memory.filters import filter_from_fields
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_import
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world
from tests.support.hostile import hostile_id_values
from tests.support.jobs import prepare_job_files


@pytest.fixture
def world(db, settings):
    prepare_job_files(settings)
    w = two_tenant_world()
    w.scope = scope_for_membership(w.acme_admin)
    w.globex_scope = scope_for_membership(w.globex_admin)
    return w


def _run(world, tmp_path, content: bytes | str, *, skip_invalid=True, name="hostile.ndjson") -> Job:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    job = job_import(scope=world.scope, app_id="concierge_app", source=path, filename=name, skip_invalid=skip_invalid)
    assert run_job(job.pk) in (Job.State.SUCCEEDED, Job.State.FAILED)
    job.refresh_from_db()
    return job


def _row(**fields) -> dict:
    return {"id": "m1", "memory": "a fact", "user_id": "u1", **fields}


def _count(world, scope=None, **fields) -> int:
    return selectors.memory_count(scope=scope or world.scope, filters=filter_from_fields(**fields))


def _reasons(job) -> dict[int, str]:
    return {b["at"]: b["reason"] for b in job.receipt["import"]["malformed_rows"]}


@pytest.mark.django_db(transaction=True)
def test_hostile_rows_are_malformed_never_half_written(world, tmp_path):
    lines = [
        '{"id": "deep", "memory": "x", "user_id": "u", "metadata": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"id": "nan", "memory": "x", "user_id": "u", "created_at": NaN}',
        '{"id": "inf", "memory": "x", "user_id": "u", "created_at": 1e999}',
        '{"id": "sur", "memory": "\\udfff", "user_id": "u"}',
        '{"id": "sur2", "memory": "x", "user_id": "\\ud800"}',
        json.dumps(_row(id="who", metadata={"user_id": "victim"})),
        json.dumps(_row(id="app", metadata={"app_id": "globex_app", "run_id": "r"})),
        json.dumps(_row(id="cat", categories=[{"$gt": 1}])),
        json.dumps(_row(id="hist", history=[{"id": "h1", "memory_id": "someone-else", "event": "ADD"}])),
        json.dumps(_row(id="many", history=[{"id": f"h{i}", "event": "ADD"} for i in range(1001)])),
        json.dumps(_row(id="evt", history=[{"id": "h2", "event": "DROP TABLE"}])),
        json.dumps(_row(id="star", hash="*")),
        json.dumps(_row(id="long", memory="x" * 20_001)),
        json.dumps(_row(id="ts", created_at=True)),
        json.dumps(_row(id="year", created_at=1e12)),
        json.dumps([1, 2]),
        "\x00\xff{",
    ]
    job = _run(world, tmp_path, "\n".join(lines) + "\n")
    assert job.state == Job.State.SUCCEEDED
    reasons = _reasons(job)
    assert sorted(reasons) == list(range(1, len(lines) + 1))  # every line refused, each by number
    assert "nested too deeply" in reasons[1] and "reserved keys: user_id" in reasons[6]
    assert "reserved keys: app_id, run_id" in reasons[7] and "belongs to another memory" in reasons[9]
    assert job.receipt["import"]["imported"] == 0 and _count(world, app_id="concierge_app") == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hostile", hostile_id_values(), ids=range(len(hostile_id_values())))
def test_hostile_ids_are_refused_or_kept_exactly(world, tmp_path, hostile):
    """The API's id rules, for the memory id and for every id of a person: refused with a reason, or stored as
    that exact id and readable by it."""
    rows = [_row(id=hostile), _row(id="m2", user_id=hostile), _row(id="m3", agent_id=hostile, memory="other")]
    content = "\n".join(json.dumps(r) for r in rows).encode("utf-8", "surrogatepass")
    job = _run(world, tmp_path, content)
    assert job.state == Job.State.SUCCEEDED
    bad = _reasons(job)
    if 1 not in bad:
        assert selectors.memory_get(scope=world.scope, memory_id=hostile.strip()).memory == "a fact"
    if 2 not in bad:
        assert _count(world, user_id=hostile.strip(), app_id="concierge_app") == 1
    assert job.receipt["import"]["imported"] + len(bad) + sum(job.receipt["import"]["duplicates"].values()) == 3


@pytest.mark.django_db(transaction=True)
def test_a_row_cannot_reach_another_tenant_or_app(world, tmp_path):
    theirs = services.memory_add(
        scope=world.globex_scope, app_id="concierge_app", messages="SECRET-globex", user_id="alice"
    )[0]
    rows = [
        _row(id=theirs.id, memory="overwritten?", user_id="alice", app_id="concierge_app"),
        _row(id="m2", app_id="other_app", memory="aimed at globex's other app"),
    ]
    job = _run(world, tmp_path, "\n".join(json.dumps(r) for r in rows))
    assert job.receipt["import"]["imported"] == 2
    assert selectors.memory_get(scope=world.globex_scope, memory_id=theirs.id).memory == "SECRET-globex"
    assert _count(world, world.globex_scope, app_id="other_app") == 0
    assert selectors.memory_get(scope=world.scope, memory_id=theirs.id).app_id == "concierge_app"
    assert _count(world, app_id="sports_portal") == 0  # nor another app of the same tenant


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "content,message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"results": 5}', "not a list of memories"),
        (b"42", "not a list of memories"),
        (b'[{"id": "a", "memory": "x", "user_id": "u"}', "neither NDJSON nor one JSON document"),
        (b"[\n" + b"\xff\xfe" * 10 + b"\n]", "not UTF-8"),
        (json.dumps(_row()).encode() + b"\n\n!!! EXPORT FAILED: this export stopped\n", "the export failed"),
        (gzip.compress(b"\n" * (2 * 1024 * 1024)), "once unpacked"),
        (b"\x1f\x8b\x08\x00garbage", "gzip file is damaged"),
    ],
)
def test_files_refused_whole(world, tmp_path, settings, content, message):
    settings.MEMADMIN_IMPORT_MAX_MB = 1
    job = _run(world, tmp_path, content)
    assert job.state == Job.State.FAILED and message in job.error, job.error
    assert _count(world, app_id="concierge_app") == 0


@pytest.mark.django_db(transaction=True)
def test_a_hash_cannot_smuggle_query_syntax(world, tmp_path):
    services.memory_add(scope=world.scope, app_id="concierge_app", messages="kept", user_id="u1")
    rows = [
        _row(id=f"q{i}", memory=f"fact {i}", hash=h)
        for i, h in enumerate(["a|b", "x}|@user_id:{u1", "@hash:{*}", "-neg", "(paren)"])
    ]
    job = _run(world, tmp_path, "\n".join(json.dumps(r) for r in rows))
    # None of them matches the stored memory's hash: each is new, none is taken for a duplicate.
    assert job.receipt["import"]["imported"] == 5 and job.receipt["import"]["duplicates"]["same_hash"] == 0


@pytest.mark.django_db(transaction=True)
def test_reasons_are_escaped_on_the_job_page(world, tmp_path, client):
    job = _run(world, tmp_path, json.dumps(_row(created_at="<script>alert(1)</script>")) + "\n", skip_invalid=False)
    client.force_login(world.acme_admin.user)
    page = client.get(reverse("job", args=["acme", job.pk])).content
    assert b"<script>alert(1)" not in page and b"&lt;script&gt;" in page
