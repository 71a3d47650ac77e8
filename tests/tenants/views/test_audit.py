"""tenants/views/audit.py: the audit log, its filters and CSV."""

import csv
import io
import json
import re

from django.test import Client
from django.utils import timezone

from memadmin.memory.models import AuditEvent
from tests.support.dashboard import HTMX, login


def test_audit_log_filters_and_csv(client, world, memories):
    login(client, world.acme_admin)
    client.get("/t/acme/user/", {"user_id": "alice"})
    page = client.get("/t/acme/audit/", {"action": "memory.list", "user_id": "alice"}, **HTMX)
    html = page.content.decode()
    assert page.status_code == 200 and "Viewed memories of alice" in html and "Stored memories" not in html
    assert client.get("/t/acme/audit/", {"date_from": "2024-02-30"}).status_code == 400
    assert client.get("/t/acme/audit/", {"date_from": "2025-02-02", "date_to": "2025-02-01"}).status_code == 400
    response = client.get("/t/acme/audit/export.csv", {"user_id": "alice"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows and {r["user_id"] for r in rows} == {"alice"} and {r["tenant"] for r in rows} == {"acme"}
    assert not AuditEvent.objects.filter(tenant=world.globex, action="memory.list").exists()


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_link_carries_the_filters_on_screen_even_after_an_htmx_filter(client, world, memories):
    login(client, world.acme_admin)
    client.get("/t/acme/user/", {"user_id": "alice"})
    client.get("/t/acme/user/", {"user_id": "bob"})
    # The filters arrive by htmx (the form swaps #results only): the link must come with the results.
    fragment = client.get("/t/acme/audit/", {"action": "memory.list", "user_id": "alice", "page": "1"}, **HTMX)
    html = fragment.content.decode()
    link = re.search(r'data-testid="audit-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "action=memory.list" in link and "user_id=alice" in link and "page=" not in link
    on_screen = int(re.search(r'data-testid="event-count">(\d+)<', html).group(1))
    rows = csv_rows(client.get(link))
    assert len(rows) == on_screen == 1 and rows[0]["action"] == "memory.list" and rows[0]["user_id"] == "alice"
    assert rows[0]["description"] == "Viewed memories of alice"


def test_csv_details_are_json(client, world, memories):
    login(client, world.acme_admin)
    client.post("/t/acme/keys/new/", {"name": 'crm "quoted" é'})
    rows = csv_rows(client.get("/t/acme/audit/export.csv", {"action": "apikey.create"}))
    details = json.loads(rows[0]["details"])  # a Python repr (single quotes) would not parse
    assert details["name"] == 'crm "quoted" é' and details["apps"] == []
    assert rows[0]["description"] == 'Created the API key “crm "quoted" é”'


def test_actions_read_as_words_and_unknown_ones_as_their_code_in_words(client, world):
    def event(action, **fields):
        return AuditEvent.objects.create(
            tenant=world.acme,
            actor="acme-support",
            actor_kind="staff",
            role="support",
            action=action,
            created_at=timezone.now(),
            **fields,
        )

    event("memory.search", user_id="u_alice")
    event("memory.list")  # not about one person
    event("app.offboard", app_id="concierge_app")
    event("something.new")
    login(client, world.acme_admin)
    html = client.get("/t/acme/audit/").content.decode()
    for words in ("Searched memories of u_alice", ">Viewed memories<", "Offboarded concierge_app", ">Something new<"):
        assert words in html
    assert '<option value="memory.search" >Searched memories</option>' in html  # the filter, in words too


def test_the_forms_send_a_typed_search_once(client, world):
    # Text fields apply on submit only: "change" fired on blur and the click on Apply sent it a second time.
    login(client, world.acme_admin)
    for url in ("/t/acme/audit/", "/t/acme/memories/"):
        trigger = re.search(r'hx-trigger="([^"]+)"', client.get(url).content.decode()).group(1)
        parts = [part.strip() for part in trigger.split(",")]
        assert "change" not in parts and "submit" in parts
        assert all(part == "submit" or part.startswith("change from:#id_") for part in parts)


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


def test_support_sees_only_their_own_actions_and_no_activity_link(client, world, memories):
    login(client, world.acme_admin)
    client.get("/t/acme/user/", {"user_id": "bob"})  # the admin's read: not support's to see
    login(client, world.acme_support)
    client.get("/t/acme/user/", {"user_id": "alice"})
    page = client.get("/t/acme/audit/")
    html = page.content.decode()
    assert page.status_code == 200 and "<h1>Your actions</h1>" in html
    assert "of alice" in html and "of bob" not in html and "acme-admin" not in html
    assert 'category=activity"' not in client.get("/t/acme/").content.decode()  # the feed is the admins'
    assert 'href="/t/acme/audit/"' in client.get("/t/acme/").content.decode()  # their own actions are one click away
    activity = client.get("/t/acme/audit/", {"category": "activity"}).content.decode()
    assert _badge("memory.add") not in activity  # the admin's adds (the fixture's) are not theirs
    rows = b"".join(client.get("/t/acme/audit/export.csv").streaming_content).decode()
    assert "acme-admin" not in rows and "acme-support" in rows


def test_invitations_name_the_address_and_webhook_actions_read_as_words(client, world):
    from tenants.scoping import scope_for_membership
    from tenants.webhooks.services import webhook_create, webhook_delete

    login(client, world.acme_admin)
    client.post("/t/acme/members/add/", {"email": "newbie@example.com", "role": "support"})
    scope = scope_for_membership(world.acme_admin)
    hook = webhook_create(scope=scope, name="crm", url="https://hooks.example.com/in", event_types=["memory_add"])
    webhook_delete(scope=scope, webhook=hook)
    html = client.get("/t/acme/audit/").content.decode()
    assert "Invited newbie@example.com as support" in html
    assert "Created the webhook “crm”" in html and "Deleted the webhook “crm”" in html
    assert ">webhook.create<" not in html and '<option value="webhook.create" >Created a webhook</option>' in html


def test_rows_lead_to_their_job_and_receipt(client, world, memories):
    from memadmin.memory import services
    from tenants.jobs.services import job_export
    from tenants.scoping import scope_for_membership

    scope = scope_for_membership(world.acme_admin)
    job = job_export(scope=scope, app_id="concierge_app")
    deleted = services.memory_delete(scope=scope, memory_id=memories.bob.id)
    AuditEvent.objects.create(
        tenant=world.acme,
        actor="acme-admin",
        actor_kind="staff",
        role="admin",
        action="export.requested",
        details={"job": "../../evil"},
        created_at=timezone.now(),
    )
    login(client, world.acme_admin)
    html = client.get("/t/acme/audit/").content.decode()
    assert f'href="/t/acme/jobs/{job.pk}/" data-testid="audit-job"' in html
    assert f'href="/t/acme/erasures/{deleted.receipt_id}/receipt.json" data-testid="audit-receipt"' in html
    assert html.count('data-testid="audit-job"') == 1  # a job id that is not one leads nowhere


def _badge(action: str) -> str:
    """The action's cell: its words, its code in the title."""
    return f'<td class="action" data-label="Action" title="{action}">'


def test_the_user_filter_finds_the_pages_that_showed_that_person_among_others(client, world, memories):
    login(Client(), world.acme_viewer).get("/t/acme/memories/")  # alice and bob on one page: one row
    login(client, world.acme_admin)
    html = client.get("/t/acme/audit/", {"user_id": "bob", "action": "memory.list"}).content.decode()
    assert "Viewed memories" in html and "acme-viewer" in html
    nobody = client.get("/t/acme/audit/", {"user_id": "carol", "action": "memory.list"}).content.decode()
    assert "acme-viewer" not in nobody
