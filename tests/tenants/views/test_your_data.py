"""tenants/views/your_data.py: an end user's own page through their link: their memories only, search, the
JSON export, deleting one memory, deleting them all. The link's hostile cases are tests/security/test_links.py."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.links import data_link_issue
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, events, login


@pytest.fixture
def alice_page(world, memories):
    """The path of alice's page at acme, as an admin issues it."""
    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    return page


def count(world, tenant="acme", **fields):
    scope = scope_for_membership(getattr(world, f"{tenant}_admin"))
    return selectors.memory_count(scope=scope, filters=filter_from_fields(**fields))


def test_the_page_lists_the_users_memories_only(client, memories, alice_page):
    response = client.get(alice_page)
    html = response.content.decode()
    assert response.status_code == 200
    assert memories.alice_food.memory in html and memories.alice_sport.memory in html
    assert memories.bob.memory not in html  # another person of the same tenant
    assert memories.globex_alice.memory not in html  # the same user_id at another tenant
    assert "2 memories stored for" in html and "Your data at Acme" in html
    assert f"{alice_page}memories/concierge_app/{memories.alice_food.id}/delete/" in html


def test_the_user_id_comes_from_the_link_not_the_query_string(client, memories, alice_page):
    html = client.get(alice_page, {"user_id": "bob"}).content.decode()
    assert memories.alice_food.memory in html and memories.bob.memory not in html


def test_search_ranks_the_users_own_memories(client, memories, alice_page):
    response = client.get(alice_page, {"q": "food preferences"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert memories.alice_food.memory in html and memories.bob.memory not in html
    # Plain words for the person: the app's name and the assistant, no similarity score, no run id.
    assert 'class="score"' not in html and "run-1" not in html and "Score" not in html
    assert ">Concierge App<" in html and ">concierge_app<" not in html


def test_export_json_is_the_users_memories_only(client, world, memories, alice_page):
    response = client.get(alice_page + "export.json")
    assert response.status_code == 200 and response.streaming and response["Content-Type"] == "application/json"
    today = timezone.now().strftime("%Y-%m-%d")
    assert response["Content-Disposition"] == f'attachment; filename="my-data-acme-{today}.json"'
    data = json.loads(b"".join(response.streaming_content))
    assert sorted(item["memory"] for item in data) == sorted([memories.alice_food.memory, memories.alice_sport.memory])
    assert client.post(alice_page + "export.json").status_code == 405


def test_the_persons_download_is_in_words_without_the_stores_bookkeeping(client, world, memories, alice_page):
    data = json.loads(b"".join(client.get(alice_page + "export.json").streaming_content))
    food = next(item for item in data if item["memory"] == memories.alice_food.memory)
    assert set(food) == {"memory", "app", "assistant", "conversation", "saved_at", "changed_at", "details", "changes"}
    assert food["app"] == world.acme_concierge.name or food["app"] == "concierge_app"
    assert food["assistant"] == "concierge" and food["changes"][0]["what"] == "added"
    assert set(food["changes"][0]) == {"what", "when", "before", "after"}
    raw = json.dumps(data)
    for bookkeeping in ('"hash"', "actor_id", '"user_id"', memories.alice_food.id):
        assert bookkeeping not in raw


def test_delete_one_memory_confirms_then_deletes(client, world, memories, alice_page):
    url = f"{alice_page}memories/concierge_app/{memories.alice_food.id}/delete/"
    assert client.get(url).status_code == 405
    confirm = client.post(url)
    assert confirm.status_code == 200 and "Delete this memory?" in confirm.content.decode()
    assert memories.alice_food.memory in confirm.content.decode()
    assert count(world, user_id="alice") == 2
    done = client.post(url, {"confirm": "yes"})
    assert done.status_code == 302 and done["Location"] == alice_page
    assert count(world, user_id="alice") == 1
    assert memories.alice_food.memory not in client.get(alice_page).content.decode()
    assert events("memory.delete", user_id="alice", actor_kind="enduser").count() == 1
    assert client.post(url, {"confirm": "yes"}).status_code == 404  # already gone


def test_another_persons_memory_cannot_be_deleted_through_the_link(client, world, memories, alice_page):
    url = f"{alice_page}memories/concierge_app/{memories.bob.id}/delete/"
    assert client.post(url, {"confirm": "yes"}).status_code == 404
    assert count(world, user_id="bob") == 1


def test_delete_all_is_post_only_confirmed_and_leaves_everyone_else(client, world, memories, alice_page):
    url = alice_page + "delete-all/"
    assert client.get(url).status_code == 405
    unconfirmed = client.post(url)
    assert unconfirmed.status_code == 400 and "Please confirm" in unconfirmed.content.decode()
    assert count(world, user_id="alice") == 2
    before = client.get(alice_page).content.decode()
    assert 'data-testid="delete-everything"' in before and 'data-testid="download"' in before
    done = client.post(url, {"confirm": "on"})
    assert done.status_code == 302 and done["Location"] == alice_page  # post-redirect-get
    html = client.get(alice_page).content.decode()
    assert "Your memories are deleted" in html
    assert 'data-testid="deleted">2<' in html and 'data-testid="remaining">0<' in html
    # Nothing is left to download or delete: neither is offered any more.
    assert 'data-testid="delete-everything"' not in html and 'data-testid="download"' not in html
    assert "Your memories are deleted" not in client.get(alice_page).content.decode()  # shown once
    assert count(world, user_id="alice") == 0
    assert count(world, user_id="bob") == 1
    assert count(world, "globex", user_id="alice") == 1


def test_a_delete_in_place_refreshes_the_pages_totals(client, world, memories, alice_page):
    url = f"{alice_page}memories/concierge_app/{memories.alice_food.id}/delete/"
    done = client.post(url, {"confirm": "yes"}, **HTMX)
    assert done.status_code == 200 and done["HX-Trigger-After-Settle"] == "memories-changed"
    reads = events("memory.list", user_id="alice").count()
    counts = client.get(alice_page, HTTP_HX_TARGET="counts", **HTMX)
    html = counts.content.decode()
    assert counts.status_code == 200 and html.lstrip().startswith('<p class="muted" id="counts">')
    assert "1 memory stored for" in html and "<html" not in html and "<header" not in html
    assert events("memory.list", user_id="alice").count() == reads  # counted, not a read of anyone's memories
    results = client.get(alice_page, HTTP_HX_TARGET="results", HTTP_MEMADMIN_RECOUNT="1", **HTMX)
    assert "<strong>1</strong> memory, newest first" in results.content.decode()


def test_who_looked_is_grouped_per_day_person_and_action_and_nothing_is_dropped(client, world, memories, alice_page):
    from datetime import datetime

    from django.utils import timezone

    from memadmin.memory.models import AuditEvent

    def access(when, actor="acme-support", role="support", action="memory.list", kind="staff"):
        AuditEvent.objects.create(
            tenant=world.acme, actor=actor, actor_kind=kind, role=role, action=action, user_id="alice", created_at=when
        )

    day = timezone.make_aware(datetime(2026, 11, 21, 9, 0))
    before = AuditEvent.objects.filter(tenant=world.acme, user_id="alice").count()
    for minute in range(12):
        access(day.replace(minute=minute))
    access(day.replace(hour=10), action="memory.search")
    access(day.replace(day=20), actor="key:crm", role="", kind="api")
    access(day, actor="someone-at-globex")  # another tenant's event about their own alice: not shown
    AuditEvent.objects.filter(actor="someone-at-globex").update(tenant=world.globex)

    html = client.get(alice_page).content.decode()
    assert "Support staff (acme-support) viewed your memories <strong>12 times</strong>" in html
    assert "21 Nov 2026" in html and "Support staff (acme-support) searched your memories at 10:00" in html
    assert "An automated system (key:crm) viewed your memories at" in html and "20 Nov 2026" in html
    assert "someone-at-globex" not in html
    assert html.count("viewed your memories <strong>12 times") == 1  # one line, not twelve
    # Every access is still its own audit row.
    assert AuditEvent.objects.filter(tenant=world.acme, user_id="alice").count() == before + 14


def test_a_tenant_wide_list_on_the_memory_browser_is_on_the_persons_list(client, world, memories, alice_page):
    """A viewer who lists everyone's memories lists alice's too: one audit row for the page, naming each person
    shown with how many of their memories, and alice reads it on her page (bob's own line is his)."""
    from memadmin.memory.models import AuditSubject

    viewer = login(Client(), world.acme_viewer)
    before = events("memory.list").count()
    assert viewer.get("/t/acme/memories/").status_code == 200
    assert events("memory.list").count() == before + 1  # one row per page, not one per memory
    row = events("memory.list").order_by("-id").first()
    assert row.user_id == "" and row.details["user_ids"] == ["alice", "bob"]
    assert row.details["place"] == "memory browser"
    assert dict(AuditSubject.objects.filter(event=row).values_list("user_id", "count")) == {"alice": 2, "bob": 1}
    html = client.get(alice_page).content.decode()
    assert "A viewer (acme-viewer) listed 2 of your memories on the memory browser at" in html
    # The overview's newest memories and a search across people are accesses too.
    viewer.get("/t/acme/")
    viewer.get("/t/acme/memories/", {"q": "tennis"})
    html = client.get(alice_page).content.decode()
    assert "A viewer (acme-viewer) listed 2 of your memories on the overview at" in html
    assert "A viewer (acme-viewer) found 1 of your memories in a search on the memory browser at" in html


def test_a_whole_app_export_is_on_the_list_of_each_person_in_it(client, world, memories, alice_page):
    admin = login(Client(), world.acme_admin)
    response = admin.get("/t/acme/apps/concierge_app/export/", {"format": "json"})
    b"".join(response.streaming_content)
    html = client.get(alice_page).content.decode()
    assert "An admin (acme-admin) exported 1 of your memories at" in html
    assert "bob" not in html  # the export named bob too; his line is on his own page
