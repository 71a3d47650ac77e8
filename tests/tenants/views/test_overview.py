"""tenants/views/overview.py: a tenant's totals, its app rows and the newest memories, counted by the store;
members only."""

import re

from memadmin.memory import selectors
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.support.dashboard import login


def stats(html: str) -> dict[str, int]:
    found = re.findall(r'<span class="stat-value">(\d+)</span><span class="stat-label">([^<]+)</span>', html)
    return {label: int(value) for value, label in found}


def app_count(html: str, app_id: str) -> str:
    """The count on an app's row: a link to browse that app's memories."""
    link = rf'<a href="[^"]*app={app_id}"[^>]*>([^<]*)</a>'
    row = re.search(rf'>{app_id}</a>\s*<span class="bar-count">{link}</span>', html)
    return row.group(1) if row else None


def test_overview_shows_the_tenants_counts_and_app_rows_to_a_member(support, world, memories):
    response = support.get("/t/acme/")
    html = response.content.decode()
    assert response.status_code == 200 and "<h1>Acme</h1>" in html
    counted = selectors.memory_counts(scope=scope_for_membership(world.acme_support))
    assert stats(html) == {"memories": 3, "end users": counted.users, "agents": 2, "apps": 2}
    assert app_count(html, "concierge_app") == "2" and app_count(html, "sports_portal") == "1"
    assert re.search(r'>alice</a>\s*<span class="bar-count">2</span>', html)  # top end users
    assert re.search(r'>concierge</a><span class="bar-count">2</span>', html)  # top agents
    assert memories.bob.memory in html and memories.alice_sport.memory in html  # newest memories
    # globex has a concierge_app and an alice too: none of its rows or memories appear.
    assert memories.globex_alice.memory not in html and "other_app" not in html and "butler" not in html


def test_overview_of_an_empty_tenant_lists_its_apps_with_zero(support, world):
    html = support.get("/t/acme/").content.decode()
    assert stats(html) == {"memories": 0, "end users": 0, "agents": 0, "apps": 2}
    assert app_count(html, "concierge_app") == "0" and app_count(html, "sports_portal") == "0"
    assert "No memories yet" in html


def test_an_offboarded_app_is_listed_but_not_counted_as_an_app(support, world):
    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.OFFBOARDED)
    html = support.get("/t/acme/").content.decode()
    assert stats(html)["app"] == 1 and "apps" not in stats(html)
    assert "Offboarded" in html  # the tombstone row stays, marked
    html = support.get("/t/acme/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="counts").content.decode()
    assert stats(html)["app"] == 1


def test_only_admins_see_each_apps_index_health(client, world, memories):
    login(client, world.acme_admin)
    assert client.get("/t/acme/").content.decode().count('data-testid="index-health"') == 2
    login(client, world.acme_support)
    assert 'data-testid="index-health"' not in client.get("/t/acme/").content.decode()


def test_overview_is_404_for_an_outsider_and_for_another_tenants_member(client, world, memories):
    login(client, world.outsider)
    assert client.get("/t/acme/").status_code == 404
    login(client, world.globex_admin)
    response = client.get("/t/acme/")
    assert response.status_code == 404 and memories.bob.memory not in response.content.decode()


def test_overview_needs_a_sign_in_and_is_get_only(client, world):
    response = client.get("/t/acme/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    login(client, world.acme_admin)
    assert client.post("/t/acme/").status_code == 405


def test_end_users_are_counted_once_across_apps(support, world, memories):
    # alice has memories in both apps and bob in one: 2 people (the old sum per app said 3).
    assert stats(support.get("/t/acme/").content.decode())["end users"] == 2
    assert "2 users in total" in support.get("/t/acme/users/").content.decode()


def test_the_counts_block_alone_is_counted_afresh_after_a_delete(support, world, memories):
    assert stats(support.get("/t/acme/").content.decode())["memories"] == 3  # now cached for a minute
    support.post(
        f"/t/acme/memories/concierge_app/{memories.bob.id}/delete/", {"confirm": "yes"}, HTTP_HX_REQUEST="true"
    )
    counts = support.get("/t/acme/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="counts")
    html = counts.content.decode()
    assert html.lstrip().startswith('<div id="counts">') and "<html" not in html and "<header" not in html
    assert stats(html) == {"memories": 2, "end users": 1, "agents": 2, "apps": 2}
    assert stats(support.get("/t/acme/").content.decode())["memories"] == 2  # and the cache holds the new count
