"""Every export writer: CSV formula injection neutralised, a failure mid-stream ends visibly,
logged and audited, and filenames survive non-ASCII ids."""

import csv
import io
import json
import logging

import pytest
from django.urls import reverse

from memadmin.memory import selectors, services
from memadmin.memory.audit import audit_record
from memadmin.memory.models import AuditEvent
from tenants.export_formats import EXPORT_FAILED_MARKER, content_disposition, csv_safe
from tenants.jobs.export_files import write_export
from tenants.scoping import scope_for_membership
from tests.support.hostile import api_client, send, your_data_url

FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://evil")']


@pytest.mark.parametrize("value", FORMULAS)
def test_csv_safe_neutralises_formulas(value):
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "", "a=b", "x-1", 42, None, "'=already"])
def test_csv_safe_leaves_the_rest(value):
    assert csv_safe(value) == value


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _assert_no_formula(text: str):
    cells = _cells(text)
    assert cells
    bad = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not bad, bad


@pytest.fixture
def formula_memories(hostile_world):
    scope = scope_for_membership(hostile_world.acme_admin)
    for value in ("=cmd", "+cmd", "-cmd", "@cmd"):
        services.memory_add(
            scope=scope, app_id="concierge_app", user_id=value, agent_id=value, run_id=value, messages=f"{value}|calc"
        )
    audit_record(scope=scope, action="=evil", user_id="=cmd", details={"x": "=1"})
    return ["=cmd", "+cmd", "-cmd", "@cmd"]


def test_every_csv_writer_neutralises_formulas(hostile_world, staff_client, formula_memories, tmp_path):
    client = staff_client("acme", "admin")
    for user_id in formula_memories:
        response = client.get(
            reverse("user_export", kwargs={"tenant_slug": "acme"}), {"user_id": user_id, "format": "csv"}
        )
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode()
        assert f"'{user_id}|calc" in text
        _assert_no_formula(text)
    response = client.get(
        reverse("app_export", kwargs={"tenant_slug": "acme", "app_id": "concierge_app"}), {"format": "csv"}
    )
    _assert_no_formula(b"".join(response.streaming_content).decode())
    response = client.get(reverse("audit_csv", kwargs={"tenant_slug": "acme"}))
    text = b"".join(response.streaming_content).decode()
    assert "'=evil" in text
    _assert_no_formula(text)
    scope = scope_for_membership(hostile_world.acme_admin)
    from memadmin.memory.filters import filter_from_fields

    items = selectors.memory_export(scope=scope, filters=filter_from_fields(app_id="concierge_app"), audit=False)
    path = tmp_path / "job.csv"
    write_export(items=items, path=path, fmt="csv", compress=False)
    _assert_no_formula(path.read_text())


# --- a streamed export that fails midway ----------------------------------------------------------


def _failing_after_one(real):
    def export(**kwargs):
        items = real(**kwargs)
        yield next(items)
        items.close()
        raise RuntimeError("the store went away mid-export")

    return export


def _export_requests(world, slug="acme"):
    """(name, principal client, method, url, params or body): every streamed export there is."""
    key = api_client(world.keys[slug].full)
    return [
        (
            "user json",
            "staff",
            "get",
            reverse("user_export", kwargs={"tenant_slug": slug}),
            {"user_id": "alice", "format": "json"},
        ),
        (
            "user csv",
            "staff",
            "get",
            reverse("user_export", kwargs={"tenant_slug": slug}),
            {"user_id": "alice", "format": "csv"},
        ),
        (
            "app json",
            "staff",
            "get",
            reverse("app_export", kwargs={"tenant_slug": slug, "app_id": "concierge_app"}),
            {"format": "json"},
        ),
        (
            "app csv",
            "staff",
            "get",
            reverse("app_export", kwargs={"tenant_slug": slug, "app_id": "concierge_app"}),
            {"format": "csv"},
        ),
        ("your data", None, "get", your_data_url(world, slug, "your_data_export"), {}),
        ("api export", key, "post", "/v1/exports/get/", {"filters": {"user_id": "alice"}}),
    ]


def test_every_streamed_export_ends_visibly_when_it_fails(hostile_world, staff_client, monkeypatch, caplog):
    from django.test import Client

    monkeypatch.setattr(selectors, "memory_export", _failing_after_one(selectors.memory_export))
    for name, who, method, url, params in _export_requests(hostile_world):
        client = staff_client("acme", "admin") if who == "staff" else (who or Client())
        before = AuditEvent.objects.filter(action="export.failed").count()
        with caplog.at_level(logging.ERROR, logger="memadmin.exports"):
            if method == "get":
                response = client.get(url, params)
            else:
                response = send(client, "post", url, params)
            assert response.status_code == 200, (name, response.content[:300])
            text = b"".join(response.streaming_content).decode()
        assert EXPORT_FAILED_MARKER in text, name
        if "csv" not in name:
            with pytest.raises(ValueError):
                json.loads(text)  # a JSON client cannot take the truncated document for a whole one
        assert AuditEvent.objects.filter(action="export.failed").count() == before + 1, name
        assert any("export failed" in r.getMessage().lower() for r in caplog.records), name
        caplog.clear()


def test_a_complete_export_is_valid_json(hostile_world, staff_client):
    client = staff_client("acme", "admin")
    response = client.get(
        reverse("user_export", kwargs={"tenant_slug": "acme"}), {"user_id": "alice", "format": "json"}
    )
    items = json.loads(b"".join(response.streaming_content))
    assert len(items) == 2
    response = send(
        api_client(hostile_world.keys["acme"].full), "post", "/v1/exports/get/", {"filters": {"user_id": "alice"}}
    )
    assert json.loads(b"".join(response.streaming_content))["count"] == 2


# --- Content-Disposition ----------------------------------------------------------------------------


def test_content_disposition_has_an_ascii_fallback_and_rfc_6266_utf8():
    header = content_disposition("acme-Zoë 名前-2026-01-01.json")
    assert header.startswith('attachment; filename="')
    assert header.isascii() and "=?utf-8?" not in header.lower()
    assert "filename*=UTF-8''acme-Zo%C3%AB%20%E5%90%8D%E5%89%8D-2026-01-01.json" in header
    assert content_disposition('a"b\\c.csv').count('"') == 2
    assert content_disposition("plain.csv") == 'attachment; filename="plain.csv"'


def test_a_non_ascii_user_export_has_a_clean_header(hostile_world, staff_client):
    scope = scope_for_membership(hostile_world.acme_admin)
    services.memory_add(scope=scope, app_id="concierge_app", user_id="Zoë-名前", messages="unicode person")
    client = staff_client("acme", "admin")
    response = client.get(
        reverse("user_export", kwargs={"tenant_slug": "acme"}), {"user_id": "Zoë-名前", "format": "csv"}
    )
    header = response["Content-Disposition"]
    assert header.isascii() and "=?utf-8?" not in header.lower(), header
    assert "filename*=UTF-8''" in header and "Zo%C3%AB" in header
    # Read to the end: an unread stream's export generator audits when the garbage collector closes it, which
    # may be during a later test (on PostgreSQL, whose ids are never handed out again, a foreign-key error).
    assert "unicode person" in b"".join(response.streaming_content).decode()


def test_the_audit_csv_ends_visibly_when_it_fails(hostile_world, staff_client, monkeypatch, caplog):
    """The audit log is personal data too (who looked at whom): a CSV cut short must say so, not pass as whole."""
    from tenants.views import audit

    def failing(rows, header):
        yield from audit_csv_header(header)
        raise RuntimeError("the database went away mid-export")

    def audit_csv_header(header):
        yield ",".join(header) + "\r\n"

    monkeypatch.setattr(audit, "csv_lines", failing)
    before = AuditEvent.objects.filter(action="export.failed").count()
    with caplog.at_level(logging.ERROR, logger="memadmin.exports"):
        response = staff_client("acme", "admin").get(reverse("audit_csv", kwargs={"tenant_slug": "acme"}))
        text = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and text.startswith("created_at,") and EXPORT_FAILED_MARKER in text
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="export.failed").count() == before + 1
    assert any("export failed" in r.getMessage().lower() for r in caplog.records)


def test_an_export_that_fails_with_the_database_still_ends_visibly(hostile_world, monkeypatch, caplog):
    """When the failure is the database, the audit write fails too: the marker must already be out."""
    from tenants import export_formats as exports
    from tenants.scoping import scope_for_membership

    def broken_audit(**kwargs):
        raise RuntimeError("the database is gone as well")

    def failing():
        yield "created_at,actor\r\n"
        raise RuntimeError("the database went away mid-export")

    monkeypatch.setattr(exports, "audit_record", broken_audit)
    scope = scope_for_membership(hostile_world.acme_admin)
    with caplog.at_level(logging.ERROR, logger="memadmin.exports"):
        text = b"".join(exports.ending_visibly(failing(), scope=scope, what="audit.csv")).decode()
    assert text.startswith("created_at,") and EXPORT_FAILED_MARKER in text
    assert any("could not audit" in r.getMessage().lower() for r in caplog.records)


@pytest.mark.parametrize("app_id", ["concierge_app", None], ids=["app", "tenant"])
def test_downloading_an_export_file_is_audited(hostile_world, staff_client, app_id):
    """The file is every memory of an app (or tenant): each download is a read of all of it, by someone."""
    from tenants.jobs.runners import run_job
    from tenants.jobs.services import job_export

    job = job_export(scope=scope_for_membership(hostile_world.acme_admin), app_id=app_id)
    run_job(job.pk)
    client = staff_client("acme", "admin")
    download = reverse("job_download", args=["acme", job.pk])
    before = AuditEvent.objects.filter(action="export.download").count()
    for _ in range(2):  # every download, not the first only
        response = client.get(download)
        assert response.status_code == 200
        lines = b"".join(response.streaming_content).splitlines()
    events = AuditEvent.objects.filter(action="export.download").order_by("created_at")
    assert events.count() == before + 2
    event = events.last()
    expected = 2 if app_id else 3
    assert len(lines) == expected
    assert (event.tenant.slug, event.actor, event.role, event.actor_kind) == ("acme", "acme-admin", "admin", "staff")
    assert event.app_id == (app_id or "") and event.count == expected
    assert event.details["job"] == str(job.pk) and event.details["kind"] == job.kind
    # Refused or expired downloads read nothing and record nothing.
    assert staff_client("acme", "support").get(download).status_code == 403
    assert staff_client("globex", "admin").get(reverse("job_download", args=["globex", job.pk])).status_code == 404
    assert AuditEvent.objects.filter(action="export.download").count() == before + 2


def test_the_apis_export_is_audited_with_its_count(hostile_world):
    client = api_client(hostile_world.keys["acme"].full)
    response = send(client, "post", "/v1/exports/get/", {"filters": {"user_id": "alice"}})
    assert response.status_code == 200
    body = json.loads(b"".join(response.streaming_content))
    event = AuditEvent.objects.filter(action="memory.export", actor_kind="api").latest("created_at")
    assert event.count == body["count"] == 2 and event.user_id == "alice"
