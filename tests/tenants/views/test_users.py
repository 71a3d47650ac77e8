"""tenants/views/users.py: the user page, its export and deletion, the users index, "your data" links."""

import csv
import io
import json
import re

from django.test import Client
from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, events, login


def test_user_page_spans_apps_and_is_audited(support, memories):
    response = support.get("/t/acme/user/", {"user_id": "alice"})
    html = response.content.decode()
    assert "vegetarian" in html and "tennis" in html and "Bob" not in html and "sushi" not in html
    assert "Export JSON" in html and "Delete all memories of alice" in html
    assert "Issue link" not in html  # support cannot issue links
    assert events("memory.list", user_id="alice", actor_kind="staff").exists()


def test_user_page_counts_only_the_apps_that_hold_the_users_memories(support, memories):
    # bob is in one of acme's two apps; the empty app is not "across 2 apps".
    html = support.get("/t/acme/user/", {"user_id": "bob"}).content.decode()
    assert "1 memory across 1 app and 1 agent" in html
    html = support.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert "2 memories across 2 apps and 2 agents" in html


def test_user_page_rejects_bad_ids(support, world):
    assert support.get("/t/acme/user/", {"user_id": "*"}).status_code == 400
    assert support.get("/t/acme/user/").status_code == 400


def test_user_page_search_partial(support, memories):
    response = support.get("/t/acme/user/", {"user_id": "alice", "q": "food preferences"}, **HTMX)
    html = response.content.decode()
    assert "<html" not in html and "vegetarian" in html and 'class="score"' in html


def test_user_export_json_is_streamed_with_user_and_date(support, memories):
    response = support.get("/t/acme/user/export/", {"user_id": "alice", "format": "json"})
    assert response.streaming and response["Content-Type"] == "application/json"
    today = timezone.now().strftime("%Y-%m-%d")
    assert response["Content-Disposition"] == f'attachment; filename="acme-alice-{today}.json"'
    data = json.loads(b"".join(response.streaming_content))
    assert sorted(d["memory"] for d in data) == sorted([memories.alice_food.memory, memories.alice_sport.memory])
    assert all(d["user_id"] == "alice" and isinstance(d["history"], list) for d in data)
    assert events("memory.export", user_id="alice").get().count == 2


def test_user_export_csv(support, memories):
    response = support.get("/t/acme/user/export/", {"user_id": "alice", "format": "csv"})
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["memory"] for r in rows} == {memories.alice_food.memory, memories.alice_sport.memory}
    assert json.loads(next(r for r in rows if r["app_id"] == "concierge_app")["history"])[0]["event"] == "ADD"


def test_user_export_of_nobody_is_an_empty_list(support, world):
    response = support.get("/t/acme/user/export/", {"user_id": "nobody", "format": "json"})
    assert json.loads(b"".join(response.streaming_content)) == []


def test_user_delete_needs_the_typed_id(support, world, memories):
    wrong = support.post("/t/acme/user/delete/", {"user_id": "alice", "confirm_user_id": "Alice"})
    assert wrong.status_code == 400 and "does not match" in wrong.content.decode()
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="alice")) == 2
    done = support.post("/t/acme/user/delete/", {"user_id": "alice", "confirm_user_id": "alice"}, **HTMX)
    html = done.content.decode()
    assert done.status_code == 200 and "<html" not in html
    assert re.search(r'data-testid="deleted">2<', html) and re.search(r'data-testid="remaining">0<', html)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="alice")) == 0
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="bob")) == 1
    other = scope_for_membership(world.globex_admin)
    assert selectors.memory_count(scope=other, filters=filter_from_fields(user_id="alice")) == 1
    assert events("memory.delete_matching", user_id="alice").get().count == 2


def test_users_index_lists_top_users(support, memories):
    html = support.get("/t/acme/users/").content.decode()
    assert "alice" in html and "bob" in html and "Open user" in html


# --- your-data links ---------------------------------------------------------------------------------


def test_admin_issues_a_link_shown_once_and_can_revoke_it(client, world, memories):
    login(client, world.acme_admin)
    issued = client.post("/t/acme/user/links/", {"user_id": "alice", "days": "7"})
    assert issued.status_code == 302
    page = client.get(issued["Location"]).content.decode()
    link = re.search(r'id="issued-link" class="mono" value="([^"]+)"', page).group(1)
    assert "/your-data/" in link and "Copy" in page
    assert 'id="issued-link"' not in client.get(issued["Location"]).content.decode()  # shown once
    assert events("link.issue", user_id="alice").exists()
    from tenants.models import DataLink

    row = DataLink.objects.get(user_id="alice")
    asked = client.post(f"/t/acme/links/{row.pk}/revoke/")  # first the confirmation, nothing revoked
    assert asked.status_code == 200 and "Revoke the link" in asked.content.decode()
    assert not events("link.revoke", user_id="alice").exists()
    client.post(f"/t/acme/links/{row.pk}/revoke/", {"confirm": "yes"})
    assert events("link.revoke", user_id="alice").exists()
    assert "revoked" in client.get(link).content.decode()


def test_an_issued_link_is_shown_only_on_its_own_persons_page(client, world, memories):
    """Two links issued before either page is opened (two tabs, or a page that failed in between): each
    shows on its own person's page, never on another person's under their name."""
    login(client, world.acme_admin)
    for user_id in ("alice", "bob"):
        assert client.post("/t/acme/user/links/", {"user_id": user_id, "days": "7"}).status_code == 302
    shown = {}
    for user_id in ("bob", "alice", "bob"):
        page = client.get("/t/acme/user/", {"user_id": user_id}).content.decode()
        found = re.search(r'id="issued-link" class="mono" value="([^"]+)"', page)
        shown.setdefault(user_id, []).append(found.group(1) if found else None)
    assert shown["bob"][0] and shown["bob"][1] is None and shown["alice"][0]
    assert shown["alice"][0] != shown["bob"][0]
    bob_page = client.get(shown["bob"][0]).content.decode()
    assert "Bob is allergic" in bob_page and "vegetarian" not in bob_page


def test_a_delete_in_place_refreshes_the_counts_and_chips(support, world, memories):
    page = support.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert '<p class="muted" id="counts">' in page and "2 memories across 2 apps" in page
    support.post(f"/t/acme/memories/sports_portal/{memories.alice_sport.id}/delete/", {"confirm": "yes"}, **HTMX)
    reads = events("memory.list", user_id="alice").count()
    counts = support.get("/t/acme/user/", {"user_id": "alice"}, HTTP_HX_TARGET="counts", **HTMX)
    html = counts.content.decode()
    assert html.lstrip().startswith('<p class="muted" id="counts">') and "<html" not in html and "<header" not in html
    assert "1 memory across 1 app" in html and "sports_portal" not in html  # the chip went with it
    # the chips, out of band
    assert 'id="chips" role="group" aria-label="Where this user\'s memories are" hx-swap-oob="true"' in html
    # the runs and agents, out of band too: the coach agent held only the deleted memory
    assert '<div class="groups" id="groups" hx-swap-oob="true">' in html
    assert 'data-agent="concierge"' in html and 'data-agent="coach"' not in html
    assert events("memory.list", user_id="alice").count() == reads


def test_a_user_page_past_the_end_shows_the_last_page(support, world, add):
    for i in range(27):
        add(world.acme, "concierge_app", "dora", f"Dora's note {i}")
    response = support.get("/t/acme/user/", {"user_id": "dora", "page": "5"})
    html = response.content.decode()
    assert response.status_code == 200 and "Page 2 of 2" in html and "No memories for" not in html


def test_erasing_without_js_redirects_and_shows_the_counts_once(support, world, memories):
    done = support.post("/t/acme/user/delete/", {"user_id": "alice", "confirm_user_id": "alice"})
    assert done.status_code == 302 and done["Location"] == "/t/acme/user/?user_id=alice#erase-panel"
    page = support.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert re.search(r'data-testid="deleted">2<', page) and re.search(r'data-testid="remaining">0<', page)
    again = support.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    # A reload: the store, which holds nothing now, and the erasure's receipt
    assert 'data-testid="deleted"' not in again and "was erased on" in again
    assert events("memory.delete_matching", user_id="alice").count() == 1


def test_erasing_with_htmx_refreshes_the_pages_counts(support, world, memories):
    done = support.post("/t/acme/user/delete/", {"user_id": "alice", "confirm_user_id": "alice"}, **HTMX)
    assert done.status_code == 200 and done["HX-Trigger-After-Settle"] == "memories-changed"


def test_user_ids_are_suggested_from_a_bounded_scoped_prefix_query(support, world, add):
    from tenants.models import EndUser

    add(world.acme, "concierge_app", "alice", "Alice likes tea")
    add(world.globex, "concierge_app", "alvin", "Alvin is Globex's")  # another tenant's person
    EndUser.objects.bulk_create(EndUser(tenant=world.acme, user_id=f"al{n:03}") for n in range(15))
    html = support.get("/t/acme/users/suggest/", {"user_id": "al"}, **HTMX).content.decode()
    assert html.count("<option") == 10  # bounded
    assert 'value="al000"' in html and "alvin" not in html
    assert 'value="alice"' in support.get("/t/acme/users/suggest/", {"user_id": "ali"}).content.decode()
    assert "<option" not in support.get("/t/acme/users/suggest/", {"user_id": "Ali"}).content.decode()  # exact case
    assert "<option" not in support.get("/t/acme/users/suggest/", {"user_id": ""}).content.decode()
    assert support.post("/t/acme/users/suggest/", {"user_id": "al"}).status_code == 405


def test_an_id_with_no_memories_says_so_instead_of_offering_export_and_delete(support, world, memories):
    response = support.get("/t/acme/user/", {"user_id": "nobody"})
    html = response.content.decode()
    assert response.status_code == 200 and "No memories stored for this id" in html
    assert "Export JSON" not in html and "Delete all memories" not in html and "Issue link" not in html
    assert 'list="user-suggestions"' in html  # try another id, with suggestions


def test_a_person_without_memories_keeps_their_link_table(client, world, memories):
    """An end user deleted everything through their link: the link still works until it expires, so the
    admin's page for them still lists it, with its Revoke button."""
    from tenants.links import data_link_issue

    link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    client.get(page)  # the person opens it: "last used"
    assert client.post(page + "delete-all/", {"confirm": "on"}).status_code == 302
    admin = login(client, world.acme_admin)
    html = admin.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert 'data-testid="erased-on"' in html and "receipt" in html  # the person's own delete-all, with its receipt
    assert 'data-testid="link-table"' in html and f"/t/acme/links/{link.pk}/revoke/" in html
    # The erased person left "Recently seen"; bob, still stored, is there.
    users = admin.get("/t/acme/users/").content.decode()
    recent = users[users.index("Recently seen") :]
    assert ">alice<" not in recent and ">bob<" in recent


def test_the_data_links_page_lists_every_link_with_its_state(client, world, memories):
    from datetime import timedelta

    from tenants.links import data_link_issue, data_link_revoke
    from tenants.models import DataLink

    scope = scope_for_membership(world.acme_admin)
    active, page = data_link_issue(scope=scope, user_id="alice")
    revoked, _ = data_link_issue(scope=scope, user_id="bob")
    data_link_revoke(scope=scope, link_id=revoked.pk)
    expired, _ = data_link_issue(scope=scope, user_id="carol")
    DataLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    data_link_issue(scope=scope_for_membership(world.globex_admin), user_id="globex-person")
    client.get(page)
    admin = login(client, world.acme_admin)
    html = admin.get("/t/acme/links/").content.decode()
    assert "3 links" in html and "globex-person" not in html
    assert html.count('<span class="badge badge-ok">active</span>') == 1 and html.count(">revoked<") == 1
    assert html.count(">expired<") == 1 and "acme-admin" in html
    assert html.count('<span class="muted">never</span>') == 2  # only alice opened hers
    assert f"/t/acme/links/{active.pk}/revoke/" in html and f"/t/acme/links/{revoked.pk}/revoke/" not in html
    only = admin.get("/t/acme/links/", {"state": "revoked"}).content.decode()
    assert "1 link" in only and ">bob<" in only and ">alice<" not in only
    assert admin.get("/t/acme/links/", {"state": "lost"}).status_code == 400
    assert admin.get("/t/acme/links/", {"user_id": "a\x00b"}).status_code == 400
    # Revoke from this page: a confirmation, then back here with the link revoked.
    confirm = admin.post(f"/t/acme/links/{active.pk}/revoke/", {"next": "/t/acme/links/?state=active"})
    assert confirm.status_code == 200 and DataLink.objects.get(pk=active.pk).revoked_at is None
    done = admin.post(f"/t/acme/links/{active.pk}/revoke/", {"confirm": "yes", "next": "/t/acme/links/?state=active"})
    assert done.status_code == 302 and done["Location"] == "/t/acme/links/?state=active"
    assert DataLink.objects.get(pk=active.pk).revoked_at is not None
    assert events("link.revoke", user_id="alice").count() == 1


def test_the_data_links_page_is_for_link_managers_only(client, world, memories):
    assert login(Client(), world.acme_support).get("/t/acme/links/").status_code == 403
    assert login(Client(), world.acme_viewer).get("/t/acme/links/").status_code == 403
    assert login(Client(), world.outsider).get("/t/acme/links/").status_code == 404
    assert login(Client(), world.acme_admin).post("/t/acme/links/").status_code == 405


def test_the_app_and_agent_chips_lead_to_those_memories(client, world, memories):
    login(client, world.acme_support)
    html = client.get("/t/acme/user/", {"user_id": "alice"}).content.decode()
    assert 'data-testid="chip-app" href="/t/acme/memories/?user_id=alice&amp;app=concierge_app"' in html
    assert 'data-testid="chip-agent" href="/t/acme/memories/?user_id=alice&amp;agent_id=coach"' in html
    browse = client.get("/t/acme/memories/", {"user_id": "alice", "agent_id": "coach"})
    assert browse.status_code == 200 and memories.alice_sport.memory in browse.content.decode()
    assert memories.alice_food.memory not in browse.content.decode()
