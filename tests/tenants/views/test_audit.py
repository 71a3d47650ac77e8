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
