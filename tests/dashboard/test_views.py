"""Dashboard views against the real Valkey + Mem0: pages vs HTMX fragments, URL state, paging, errors, audit."""

import csv
import io
import json
import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.scope import scope_for_membership
from tenants.models import AuditEvent
from tests.dashboard.conftest import login

HTMX = {"HTTP_HX_REQUEST": "true"}


def events(action, **filters):
    return AuditEvent.objects.filter(action=action, **filters)


@pytest.fixture
def support(client, world):
    return login(client, world.acme_support)


# --- browser: page vs fragment, URL state, filters, paging, search -------------------------------


def test_browse_full_page_then_htmx_fragment(support, memories):
    page = support.get("/t/acme/memories/")
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html and 'hx-push-url="true"' in html
    assert memories.alice_food.memory in html and memories.globex_alice.memory not in html
    fragment = support.get("/t/acme/memories/", {"user_id": "bob"}, **HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and "<table" in body
    assert "Bob is allergic" in body and "Alice" not in body
    assert "HX-Request" in fragment["Vary"]


def test_the_url_reproduces_the_view(support, memories):
    """What HTMX pushes (the query string) renders the same filters and rows on a plain reload."""
    html = support.get("/t/acme/memories/", {"user_id": "alice", "app": "sports_portal"}).content.decode()
    assert 'value="alice"' in html and re.search(r'<option value="sports_portal"\s+selected', html)
    assert "Alice plays tennis" in html and "vegetarian" not in html


def test_filters_exact_and_star(support, world, add, memories):
    add(world.acme, "concierge_app", "Alice", "Capital Alice is another person")
    add(world.acme, "concierge_app", "dave", "Dave has no agent")
    alice = support.get("/t/acme/memories/", {"user_id": "alice"}, **HTMX).content.decode()
    assert "Capital Alice" not in alice and "vegetarian" in alice
    with_agent = support.get("/t/acme/memories/", {"agent_id": "*"}, **HTMX).content.decode()
    assert "Dave has no agent" not in with_agent and "Bob is allergic" in with_agent
    with_run = support.get("/t/acme/memories/", {"run_id": "run-1"}, **HTMX).content.decode()
    assert "vegetarian" in with_run and "Bob" not in with_run


def test_pagination_exact_totals(support, world, add):
    for i in range(23):
        add(world.acme, "sports_portal", "pat", f"Pat fact number {i}")
    first = support.get("/t/acme/memories/", {"user_id": "pat", "page_size": 10}, **HTMX).content.decode()
    assert '<strong data-testid="total">23</strong> memories' in first and "1–10 of 23" in first
    # "Older" carries a keyset cursor: follow it to the end.
    html, seen = first, first.count("Pat fact number")
    while 'data-testid="older"' in html:
        after = re.search(r'after=([^"&]+)"[^>]*data-testid="older"', html).group(1)
        html = support.get("/t/acme/memories/", {"user_id": "pat", "page_size": 10, "after": after}, **HTMX)
        html = html.content.decode()
        seen += html.count("Pat fact number")
    assert seen == 23 and "21–23 of 23" in html
    last = support.get("/t/acme/memories/", {"user_id": "pat", "page_size": 10, "page": 3}, **HTMX)
    assert last.content.decode().count("Pat fact number") == 3
    assert 'rel="prev"' in last.content.decode() and 'rel="next"' not in last.content.decode()


def test_search_is_ranked_with_scores(support, memories):
    html = support.get("/t/acme/memories/", {"q": "what food does she like"}, **HTMX).content.decode()
    assert "closest match" in html and 'class="score"' in html
    assert html.index("vegetarian") < html.index("tennis")
    assert "sushi" not in html  # other tenant
    assert events("memory.search", tenant__slug="acme").exists()


def test_empty_state(support, world):
    html = support.get("/t/acme/memories/").content.decode()
    assert "No memories yet" in html


@pytest.mark.parametrize("query,message", [
    ({"page": "0"}, "greater than or equal to 1"),
    ({"page": "abc"}, "whole number"),
    ({"page_size": "7"}, "Select a valid choice"),
    ({"user_id": "a b"}, "whitespace"),
    ({"agent_id": "x" * 129}, "at most 128"),
    ({"app": "not_an_app"}, "Select a valid choice"),
    ({"q": "x" * 2001}, "at most 2000"),
])  # fmt: skip
def test_bad_query_strings_are_400_with_the_error(support, world, query, message):
    page = support.get("/t/acme/memories/", query)
    assert page.status_code == 400 and message in page.content.decode() and "<html" in page.content.decode()
    fragment = support.get("/t/acme/memories/", query, **HTMX)
    assert fragment.status_code == 400 and message in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_paging_has_no_search_window_and_bad_cursors_are_400(support, world, memories):
    # Page numbers are no longer capped at the engine's 10,000-result window: past the end is just empty.
    response = support.get("/t/acme/memories/", {"page": "10000", "page_size": "100"})
    assert response.status_code == 200 and "No memories" in response.content.decode()
    assert support.get("/t/acme/memories/", {"page": "1000001"}).status_code == 400
    for cursor in ("not-a-cursor", "eyJwIjp7ImNvbmNpZXJnZV9hcHAiOlsiMSBdIHwgKiIsMF19LCJuIjowLCJ0IjowfQ"):
        response = support.get("/t/acme/memories/", {"after": cursor})
        assert response.status_code == 400 and "cursor is not valid" in response.content.decode()


# --- 404s ----------------------------------------------------------------------------------------


def test_unknowns_are_404(support, world, memories):
    assert support.get("/t/nope/").status_code == 404
    assert support.get("/t/acme/memories/concierge_app/does-not-exist/").status_code == 404
    assert support.get("/t/acme/memories/no_such_app/x/").status_code == 404
    # Another tenant's memory id through our own tenant: not found, not forbidden.
    assert support.get(f"/t/acme/memories/concierge_app/{memories.globex_alice.id}/").status_code == 404


def test_app_export_of_unknown_app_is_404(client, world):
    login(client, world.acme_admin)
    assert client.get("/t/acme/apps/no_such_app/export/", {"format": "json"}).status_code == 404
    assert client.get("/t/acme/apps/concierge_app/export/", {"format": "xml"}).status_code == 400


# --- store unreachable -> 503 --------------------------------------------------------------------


@pytest.fixture
def store_down(doomed_server):
    """Every read must say the store is unreachable."""
    doomed_server.kill()
    return doomed_server


def test_store_down_is_503_page_and_partial(support, world, store_down):
    page = support.get("/t/acme/")
    assert page.status_code == 503 and "memory store is unreachable" in page.content.decode()
    assert "<html" in page.content.decode() and "No memories" not in page.content.decode()
    fragment = support.get("/t/acme/memories/", {"user_id": "alice"}, **HTMX)
    assert fragment.status_code == 503 and "memory store is unreachable" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    export = support.get("/t/acme/user/export/", {"user_id": "alice", "format": "json"})
    assert export.status_code == 503 and not export.streaming


# --- detail and single deletion --------------------------------------------------------------------


def test_detail_shows_ids_metadata_history_and_is_audited(support, memories):
    response = support.get(f"/t/acme/memories/concierge_app/{memories.alice_food.id}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert memories.alice_food.id in html and "run-1" in html and "History" in html and "ADD" in html
    event = events("memory.get").get()
    assert event.memory_ids == [memories.alice_food.id] and event.user_id == "alice" and event.role == "support"
    assert event.ip == "127.0.0.1"


def test_memory_delete_confirms_then_deletes(support, world, memories):
    url = f"/t/acme/memories/concierge_app/{memories.bob.id}/delete/"
    confirm = support.post(url)
    assert confirm.status_code == 200 and "Delete this memory?" in confirm.content.decode()
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="bob")) == 1
    done = support.post(url, {"confirm": "yes", "next": "/t/acme/memories/?user_id=bob"})
    assert done.status_code == 302 and done["Location"] == "/t/acme/memories/?user_id=bob"
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="bob")) == 0
    assert events("memory.delete", user_id="bob").count() == 1
    assert support.post(url, {"confirm": "yes"}).status_code == 404  # already gone


def test_memory_delete_over_htmx_removes_the_row_and_toasts(support, memories):
    url = f"/t/acme/memories/sports_portal/{memories.alice_sport.id}/delete/"
    response = support.post(url, {"confirm": "yes"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and 'hx-swap-oob="beforeend"' in body and "Memory deleted" in body


def test_unsafe_next_is_ignored(support, memories):
    url = f"/t/acme/memories/concierge_app/{memories.bob.id}/delete/"
    response = support.post(url, {"confirm": "yes", "next": "https://evil.example/"})
    assert response["Location"] == "/t/acme/memories/"


# --- end-user page, export, delete-all -------------------------------------------------------------


def test_user_page_spans_apps_and_is_audited(support, memories):
    response = support.get("/t/acme/user/", {"user_id": "alice"})
    html = response.content.decode()
    assert "vegetarian" in html and "tennis" in html and "Bob" not in html and "sushi" not in html
    assert "Export JSON" in html and "Delete all memories of alice" in html
    assert "Issue link" not in html  # support cannot issue links
    assert events("memory.list", user_id="alice", actor_kind="staff").exists()


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
    client.post(f"/t/acme/links/{row.pk}/revoke/")
    assert events("link.revoke", user_id="alice").exists()
    assert "revoked" in client.get(link).content.decode()


# --- audit log ---------------------------------------------------------------------------------------------


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


# --- members -----------------------------------------------------------------------------------------------


def test_members_add_change_remove_and_last_admin(client, world):
    from tenants.models import Membership
    from tests.factories import UserFactory

    login(client, world.acme_admin)
    newcomer = UserFactory(username="newcomer", email="new@example.com")
    assert client.post("/t/acme/members/add/", {"username": "new@example.com", "role": "support"}).status_code == 302
    member = Membership.objects.get(user=newcomer, tenant=world.acme)
    assert member.role == "support"
    assert client.post("/t/acme/members/add/", {"username": "ghost", "role": "viewer"}).status_code == 400
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "admin"}).status_code == 302
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "owner"}).status_code == 400
    assert client.post(f"/t/acme/members/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    # The last admin cannot demote or remove themselves.
    me = world.acme_admin
    assert client.post(f"/t/acme/members/{me.pk}/role/", {"role": "viewer"}).status_code == 409
    assert client.post(f"/t/acme/members/{me.pk}/remove/").status_code == 409
    # Another tenant's membership id is not found.
    assert client.post(f"/t/acme/members/{world.globex_viewer.pk}/remove/").status_code == 404


def test_members_page_lists_agents_with_counts(client, world, memories):
    login(client, world.acme_admin)
    html = client.get("/t/acme/members/").content.decode()
    assert "acme-support" in html and "concierge" in html and "coach" in html and "butler" not in html


# --- sign in, picker -----------------------------------------------------------------------------------------


def test_login_and_tenant_picker(client, world):
    from tests.factories import MembershipFactory

    assert "Sign in" in client.get("/login/").content.decode()
    response = client.post("/login/", {"username": "acme-viewer", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get("/")["Location"] == "/t/acme/"  # one tenant: straight there
    MembershipFactory(user=world.acme_viewer.user, tenant=world.globex, role="viewer")
    picker = client.get("/").content.decode()
    assert "Acme" in picker and "Globex" in picker


def test_picker_shows_only_own_tenants(client, world):
    login(client, world.outsider)
    html = client.get("/").content.decode()
    assert "not a member of any tenant" in html and "Acme" not in html


def test_login_is_throttled(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "acme-viewer", "password": "wrong"})
    locked = client.post("/login/", {"username": "acme-viewer", "password": "correct-horse-battery"})
    assert locked.status_code in (403, 429)
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only(client, world):
    login(client, world.acme_viewer)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
