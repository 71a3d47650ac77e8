"""The dashboard's journeys (support finds a user, an admin exports and erases one, an end user's link), and a
tour of the admin pages, in a real headless Chromium."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.models import DataLink
from tenants.scoping import scope_for_membership
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser


def test_support_finds_a_user_searches_and_opens_history(new_page, shot, world, memories):
    page = new_page()
    sign_in(page, "acme-support")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()

    page.get_by_role("link", name="End users").click()
    page.get_by_label("User id").fill("alice")
    page.get_by_role("button", name="Open user").click()
    expect(page.get_by_role("heading", name="alice")).to_be_visible()
    expect(page.locator("#results tbody tr")).to_have_count(2)

    page.get_by_label("Search alice's memories").fill("food preferences")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("close match")
    expect(page).to_have_url(re.compile(r"q=food(\+|%20)preferences"))  # the URL follows the HTMX search
    first = page.locator("#results tbody tr").first
    expect(first).to_contain_text("vegetarian")
    shot(page, "journey1-support-search")

    first.get_by_role("link", name="Alice prefers vegetarian food").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.locator(".timeline-item").first).to_contain_text("ADD")
    shot(page, "journey1-memory-history")

    page.reload()  # the pushed URL reproduces the same view
    page.go_back()
    expect(page.locator("#results tbody tr").first).to_contain_text("vegetarian")


def test_admin_exports_a_user_and_deletes_them(new_page, shot, world, memories, tmp_path):
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/user/?user_id=alice")
    expect(page.get_by_role("heading", name="alice")).to_be_visible()

    with page.expect_download() as info:
        page.get_by_role("link", name="Export JSON").click()
    download = info.value
    assert download.suggested_filename.startswith("acme-alice-") and download.suggested_filename.endswith(".json")
    exported = json.loads(open(download.path(), encoding="utf-8").read())
    assert sorted(m["memory"] for m in exported) == sorted([memories.alice_food.memory, memories.alice_sport.memory])
    assert {m["user_id"] for m in exported} == {"alice"}
    assert all("history" in m for m in exported)

    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8").read())))
    assert {r["app_id"] for r in rows} == {"concierge_app", "sports_portal"}
    assert {r["user_id"] for r in rows} == {"alice"}

    page.get_by_label("Type alice to confirm").fill("Alice")  # wrong case: refused
    page.get_by_role("button", name="Delete all memories of alice").click()
    expect(page.locator("#erase-panel")).to_contain_text("does not match")
    page.get_by_label("Type alice to confirm").fill("alice")
    page.get_by_role("button", name="Delete all memories of alice").click()
    expect(page.get_by_test_id("deleted")).to_have_text("2")
    expect(page.get_by_test_id("remaining")).to_have_text("0")
    shot(page, "journey2-admin-deleted-user")

    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="alice")) == 0
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="bob")) == 1


def test_end_user_link_export_delete_all_and_expired_link(new_page, shot, world, memories):
    admin = new_page()
    sign_in(admin, "acme-admin")
    admin.goto("/t/acme/user/?user_id=alice")
    admin.get_by_role("button", name="Issue link").click()
    link = admin.get_by_label("Your-data link for alice").input_value()
    admin.get_by_role("button", name="Copy", exact=True).click()
    expect(admin.get_by_role("button", name="Copied")).to_be_visible()

    person = new_page()  # no staff session: only the link
    person.goto(link)
    expect(person.get_by_role("heading", name="What our assistants remember about you")).to_be_visible()
    expect(person.locator("#results tbody tr")).to_have_count(2)
    expect(person.locator("body")).not_to_contain_text("Bob")
    expect(person.get_by_role("link", name="Audit log")).to_have_count(0)
    shot(person, "journey3-your-data")

    with person.expect_download() as info:
        person.get_by_role("link", name="Download as JSON").click()
    exported = json.loads(open(info.value.path(), encoding="utf-8").read())
    # The person's own download, in words: their two memories, without the store's ids and bookkeeping.
    assert sorted(m["memory"] for m in exported) == sorted([memories.alice_food.memory, memories.alice_sport.memory])
    assert not any("user_id" in m or "hash" in m for m in exported)

    person.get_by_label("I understand that all my memories will be deleted permanently.").check()
    person.get_by_role("button", name="Delete all my memories").click()
    expect(person.get_by_test_id("deleted")).to_have_text("2")
    expect(person.get_by_test_id("remaining")).to_have_text("0")
    shot(person, "journey3-deleted")

    DataLink.objects.filter(tenant=world.acme, user_id="alice").update(expires_at=timezone.now() - timedelta(minutes=1))
    person.goto(link)
    expect(person.get_by_test_id("link-error")).to_contain_text("expired")
    shot(person, "journey3-expired-link")


def test_tour_of_the_admin_pages(new_page, shot, world, memories, add):
    """Every main page renders in a real browser without console errors; screenshots for a human to look at."""
    likes = ["tea", "jazz", "hiking", "chess"]
    for i in range(12):
        add(
            world.acme,
            "concierge_app",
            f"user-{i % 4}",
            f"Fact {i}: likes {likes[i % 4]}",
            agent_id=["concierge", "planner"][i % 2],
            run_id=f"run-{i % 3}",
        )
    page = new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto("/login/")
    shot(page, "tour-login")
    sign_in(page, "acme-admin")
    for path, name in [
        ("/t/acme/", "overview"),
        ("/t/acme/memories/", "memories"),
        ("/t/acme/users/", "users"),
        ("/t/acme/audit/", "audit"),
        ("/t/acme/audit/?category=activity", "activity"),
        ("/t/acme/members/", "members"),
    ]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        shot(page, f"tour-{name}")
    page.goto("/t/acme/memories/")
    page.get_by_label("Agent").fill("planner")
    page.get_by_label("Agent").press("Enter")
    expect(page).to_have_url(re.compile(r"agent_id=planner"))
    expect(page.locator("#results")).to_contain_text("6 memories match")
    page.get_by_label("User", exact=True).fill("bad id")
    page.get_by_label("User", exact=True).press("Enter")
    expect(page.locator("#results .alert-error")).to_contain_text("whitespace")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/t/acme/")
    shot(page, "tour-overview-mobile")
    assert not [e for e in errors if "400" not in e], errors
