"""In-place updates in a real Chromium: every HTMX action swaps the right target (a swapped response holding
<html> or a second <header> fails), and the page stays true after it — counts, chips, the CSV link — with one
request per search."""

import re

import pytest
from playwright.sync_api import expect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.support.browser import htmx_settled, sign_in

pytestmark = pytest.mark.browser


def watch_swaps(page) -> list:
    """Every htmx response (method, url, status, whole page?) and every console error, for assert_clean."""
    seen = []

    def on_response(response):
        if response.request.headers.get("hx-request"):
            body = response.text().lower()
            seen.append((response.request.method, response.url, response.status, "<html" in body or "<header" in body))

    page.on("response", on_response)
    page.on("console", lambda message: seen.append(("console", message.text)) if message.type == "error" else None)
    return seen


def assert_clean(seen):
    assert [s for s in seen if s[0] == "console"] == []
    swaps = [s for s in seen if s[0] != "console"]
    assert swaps and not [s for s in swaps if s[3] or s[2] >= 500], swaps


def test_revoking_a_key_swaps_its_row_only(new_page, world):
    keep, _ = TenantAPIKey.objects.create_key(name="keep-me", tenant=world.acme)
    gone, _ = TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/keys/")
    swaps = watch_swaps(page)
    page.get_by_role("button", name="Revoke key crm").click()
    row = page.locator(f'tr[data-key="{gone.prefix}"]')
    expect(row.get_by_test_id("key-status")).to_have_text("revoked")
    expect(page.locator("#toasts")).to_contain_text("is revoked")
    expect(page.locator("header")).to_have_count(1)
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator(f'tr[data-key="{keep.prefix}"]').get_by_test_id("key-status")).to_have_text("active")
    assert_clean(swaps)


def test_a_created_key_survives_no_reload_as_a_second_key(new_page, world):
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/keys/")
    page.get_by_label("Name").fill("crm")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()
    assert page.url.endswith("/t/acme/keys/")  # redirected: a reload is a GET
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    assert TenantAPIKey.objects.filter(tenant=world.acme, name="crm").count() == 1


def test_deleting_a_row_refreshes_the_users_counts_and_chips(new_page, world, memories):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/user/?user_id=alice")
    counts = page.locator("#counts")
    expect(counts).to_contain_text("2 memories across 2 apps")
    expect(page.locator("#chips .chip")).to_have_count(4)  # 2 apps, 2 agents
    swaps = watch_swaps(page)
    row = page.locator("#results tbody tr", has_text="tennis")
    row.get_by_role("button", name=re.compile("Delete memory")).click()
    expect(counts).to_contain_text("1 memory across 1 app")
    expect(page.locator("#chips .chip")).to_have_count(2)  # swapped out of band
    expect(page.locator("#results .results-summary")).to_contain_text("1 memory")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    # What the page says is what the store holds.
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="alice")) == 1
    assert_clean(swaps)


def test_deleting_on_the_memories_page_updates_the_total(new_page, world, memories):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/memories/")
    expect(page.get_by_test_id("total")).to_have_text("3")
    swaps = watch_swaps(page)
    page.locator("#results tbody tr", has_text="peanuts").get_by_role("button", name=re.compile("Delete")).click()
    expect(page.get_by_test_id("total")).to_have_text("2")
    expect(page.locator("#results tbody tr")).to_have_count(2)
    assert_clean(swaps)


def test_a_typed_search_is_one_request_and_the_audit_csv_follows_the_filters(new_page, world, memories):
    from memadmin.memory.models import AuditEvent

    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/memories/")
    swaps = watch_swaps(page)
    before = AuditEvent.objects.filter(action="memory.search").count()
    page.get_by_label("Search").fill("food")
    page.get_by_role("button", name="Apply").click()  # the field blurs on this click: that was a 2nd request
    expect(page.locator("#results")).to_contain_text("close match")
    htmx_settled(page)  # a second request (the blur's) would be in flight or done by now
    assert len([s for s in swaps if s[0] == "GET" and "q=food" in s[1]]) == 1
    assert AuditEvent.objects.filter(action="memory.search").count() == before + 1

    page.goto("/t/acme/audit/")
    page.get_by_label("Action").select_option(label="Searched memories")  # applies on change, by htmx
    expect(page.get_by_test_id("event-count")).to_have_text("1")
    expect(page.locator("#results")).to_contain_text("Searched memories")
    link = page.get_by_test_id("audit-csv")
    expect(link).to_have_attribute("href", re.compile(r"action=memory\.search"))
    with page.expect_download() as info:
        link.click()
    rows = open(info.value.path(), encoding="utf-8").read().strip().splitlines()
    assert len(rows) == 2 and "memory.search" in rows[1]  # the header and the one event on screen
    assert_clean(swaps)
