"""tenants/views/audit.py: the audit log, its filters and CSV."""

import csv
import io

from memadmin.memory.models import AuditEvent
from tests.tenants.views.conftest import HTMX, login


def test_audit_log_filters_and_csv(client, world, memories):
    login(client, world.acme_admin)
    client.get("/t/acme/user/", {"user_id": "alice"})
    page = client.get("/t/acme/audit/", {"action": "memory.list", "user_id": "alice"}, **HTMX)
    html = page.content.decode()
    assert page.status_code == 200 and "memory.list" in html and "memory.add" not in html
    assert client.get("/t/acme/audit/", {"date_from": "2024-02-30"}).status_code == 400
    assert client.get("/t/acme/audit/", {"date_from": "2025-02-02", "date_to": "2025-02-01"}).status_code == 400
    response = client.get("/t/acme/audit/export.csv", {"user_id": "alice"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows and {r["user_id"] for r in rows} == {"alice"} and {r["tenant"] for r in rows} == {"acme"}
    assert not AuditEvent.objects.filter(tenant=world.globex, action="memory.list").exists()


def test_activity_is_a_filtered_mode_of_the_audit_log(client, world, memories):
    login(client, world.acme_admin)
    client.get("/t/acme/user/", {"user_id": "alice"})  # a read: audited, but not activity
    page = client.get("/t/acme/audit/", {"category": "activity"})
    html = page.content.decode()
    assert page.status_code == 200 and "<h1>Activity</h1>" in html
    assert _badge("memory.add") in html and _badge("memory.list") not in html
    assert 'aria-current="page">Activity</a>' in html
    memories_only = client.get("/t/acme/audit/", {"category": "exports"}, **HTMX).content.decode()
    assert _badge("memory.add") not in memories_only
    app_filtered = client.get("/t/acme/audit/", {"category": "memories", "app_id": "nope"}, **HTMX)
    assert "No events" in app_filtered.content.decode()
    assert client.get("/t/acme/audit/", {"category": "everything-please"}).status_code == 400
    rows = b"".join(client.get("/t/acme/audit/export.csv", {"category": "memories"}).streaming_content).decode()
    assert "memory.add" in rows and "memory.list" not in rows


def test_activity_needs_the_audit_capability(client, world, memories):
    login(client, world.acme_support)
    assert client.get("/t/acme/audit/", {"category": "activity"}).status_code == 403
    assert 'category=activity"' not in client.get("/t/acme/").content.decode()


def _badge(action: str) -> str:
    return f'<span class="badge action">{action}</span>'
