"""Editing a memory and pausing an app, by clicks only in a real Chromium: the edited text is what search finds,
and a paused app's API writes answer 423 until it is resumed."""

import pytest
from mem0 import MemoryClient
from mem0.exceptions import MemoryError as Mem0Error
from playwright.sync_api import expect

from memadmin.memory import selectors
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.support.browser import ARTIFACTS, htmx_settled, sign_in

pytestmark = pytest.mark.browser

NEW = "Alice now eats fish on Fridays and still hates olives"
WIDE, NARROW = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def shots(page, name: str) -> None:
    """The page at 1366 and at 390 px, into test-artifacts/. The caret is left as it is: Playwright hides it with
    an inline <style> that the CSP refuses, which shows up as a console error once a textarea has focus."""
    ARTIFACTS.mkdir(exist_ok=True)
    for size, suffix in ((NARROW, "390"), (WIDE, "1366")):
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{suffix}.png"), full_page=True, caret="initial")


def test_support_edits_a_memory_and_search_finds_the_new_text(new_page, world, memories):
    page = new_page()
    page.set_viewport_size(WIDE)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, "acme-support")
    page.get_by_role("link", name="Memories", exact=True).click()
    page.get_by_role("link", name="Alice prefers vegetarian food").click()
    expect(page.get_by_test_id("memory-text")).to_have_text(memories.alice_food.memory)
    history = page.locator(".timeline-item")
    expect(history).to_have_count(1)

    page.get_by_role("link", name="Edit", exact=True).click()
    text = page.get_by_label("Text")
    expect(text).to_have_value(memories.alice_food.memory)
    shots(page, "edit-memory-form")

    page.get_by_label("Metadata (a JSON object)").fill('{"user_id": "bob"}')  # refused, nothing saved
    text.fill(NEW)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field-error")).to_contain_text("metadata cannot set reserved keys: user_id.")
    page.get_by_label("Metadata (a JSON object)").fill('{"diet": "pescatarian"}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("memory-text")).to_have_text(NEW)
    expect(page.locator("#toasts")).to_contain_text("Saved: edited text and metadata.")
    expect(history).to_have_count(2)
    expect(history.last).to_contain_text("UPDATE")
    expect(history.last).to_contain_text(NEW)
    stored = selectors.memory_find(scope=scope_for_membership(world.acme_support), memory_id=memories.alice_food.id)
    assert stored.memory == NEW and stored.metadata == {"diet": "pescatarian"}
    updated = page.get_by_test_id("memory-updated").locator("time")  # the swap shows the store's Updated time
    expect(updated).to_have_attribute("datetime", stored.updated_at.isoformat(timespec="seconds"))
    expect(page.locator("pre.code")).to_contain_text('"diet": "pescatarian"')
    htmx_settled(page)
    shots(page, "edit-memory-saved")

    page.reload()  # the page after the swap is the page the store gives
    expect(page.get_by_test_id("memory-text")).to_have_text(NEW)
    expect(page.locator(".timeline-item")).to_have_count(2)

    page.get_by_role("link", name="Memories", exact=True).click()
    page.get_by_label("Search", exact=True).fill("eats fish on Fridays")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#results tbody tr").first).to_contain_text(NEW)
    # The one refused save answered 400 (its form errors were swapped in): nothing else went wrong.
    assert [e for e in errors if "400" not in e] == [], errors


def _client(world, live_server) -> MemoryClient:
    _, key = TenantAPIKey.objects.create_key(name="portal-server", tenant=world.acme)
    return MemoryClient(api_key=key, host=live_server.url)


def test_admin_pauses_an_app_api_add_is_423_resumes_and_add_works(new_page, world, memories, live_server):
    client = _client(world, live_server)
    page = new_page()
    page.set_viewport_size(WIDE)
    sign_in(page, "acme-admin")
    page.get_by_role("link", name="sports_portal", exact=True).click()
    page.get_by_role("button", name="Pause API writes").click()  # the confirm dialog is accepted
    banner = page.get_by_test_id("paused-banner")
    expect(banner).to_contain_text("sports_portal is paused since")
    expect(banner).to_contain_text("API writes answer 423")
    expect(page.get_by_role("button", name="Resume API writes")).to_be_visible()
    htmx_settled(page)
    shots(page, "app-paused")

    with pytest.raises(Mem0Error) as refused:
        client.add("I like green tea.", user_id="alice", app_id="sports_portal")
    assert refused.value.debug_info["status_code"] == 423
    assert refused.value.message.startswith("App sports_portal is paused")
    assert client.get_all(filters={"user_id": "alice", "app_id": "sports_portal"})["count"] == 1  # reads work

    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.get_by_test_id("paused-banner")).to_contain_text("sports_portal is paused since")
    shots(page, "overview-paused")

    page.get_by_role("link", name="Resume it on the app's page.").click()
    page.get_by_role("button", name="Resume API writes").click()
    expect(page.get_by_role("button", name="Pause API writes")).to_be_visible()
    expect(page.get_by_test_id("paused-banner")).to_have_count(0)
    htmx_settled(page)
    added = client.add("I like green tea.", user_id="alice", app_id="sports_portal")["results"]
    assert added[0]["app_id"] == "sports_portal"
    page.reload()
    expect(page.get_by_test_id("paused-banner")).to_have_count(0)
    client.client.close()
