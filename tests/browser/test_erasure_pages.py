"""Erasure at scale in a real browser: index health where admins look, the keyset "Older" button, and an
erasure that becomes a job, for staff and for the end user. Screenshots at 1366 and 390 px wide."""

import pytest
from playwright.sync_api import expect

from memadmin.memory import consistency
from tenants.links import data_link_issue
from tenants.scoping import scope_for_membership
from tests.memadmin.memory.rawhash import put
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


def shots(shot, page, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"erasure-{name}-{width}")


def test_unhealthy_index_is_shown_and_erasures_become_jobs(new_page, shot, world, memories, add, raw_valkey, settings):
    # A hash the index cannot hold, found by the consistency monitor.
    put(raw_valkey, world.acme_concierge.collection_name, user_id="alice", embedding=b"\x00" * 12)
    assert not consistency.consistency_check(place=world.acme_concierge.app_ref().place).healthy
    consistency.consistency_check(place=world.acme_sports.app_ref().place)

    admin = new_page()
    sign_in(admin, "acme-admin")
    admin.goto("/t/acme/")
    expect(admin.get_by_test_id("index-unhealthy")).to_have_count(1)
    expect(admin.get_by_test_id("index-health")).to_have_count(2)
    shots(shot, admin, "overview")
    admin.goto("/t/acme/apps/concierge_app/offboard/")
    expect(admin.get_by_test_id("index-unhealthy")).to_be_visible()
    shots(shot, admin, "offboard")

    admin.goto("/t/acme/user/?user_id=bob")
    admin.get_by_label("Type bob to confirm").fill("bob")
    admin.get_by_role("button", name="Delete all memories of bob").click()
    expect(admin.get_by_test_id("erasure-job")).to_contain_text("cannot vouch")
    shots(shot, admin, "user-delete-job")

    _, path = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    person = new_page()
    person.goto(path)
    person.get_by_label("I understand that all my memories will be deleted permanently.").check()
    person.get_by_role("button", name="Delete all my memories").click()
    expect(person.get_by_test_id("erasure")).to_contain_text("Erasure in progress")  # redirected to the page
    person.reload()
    expect(person.get_by_test_id("erasure")).to_contain_text("Erasure in progress")
    shots(shot, person, "your-data-in-progress")


def test_browser_pages_older_with_a_keyset_cursor(new_page, shot, world, add):
    for i in range(23):
        add(world.acme, "sports_portal", "pat", f"Pat fact number {i}")
    support = new_page()
    sign_in(support, "acme-support")
    support.goto("/t/acme/memories/?user_id=pat&page_size=10")
    expect(support.get_by_test_id("total")).to_have_text("23")
    seen = 0
    while True:
        seen += support.locator("#results tbody tr").count()
        older = support.get_by_test_id("older")
        if not older.count():
            break
        older.click()
        support.wait_for_load_state()
        expect(support.locator(".page-info")).to_contain_text(f"{seen + 1}–")
    assert seen == 23
    shots(shot, support, "browser-last-page")
