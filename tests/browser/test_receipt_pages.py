"""Erasure receipts in a real browser: support erases a person, finds the receipt on Erasures, filters it and
downloads it; the lookup of the erased person and the end user's page show theirs. Screenshots at 1366 and
390 px wide (test-artifacts/receipts-*.png)."""

import json

import pytest
from playwright.sync_api import expect

from memadmin.memory import receipts
from tenants.links import data_link_issue
from tenants.scoping import scope_for_membership
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


def shots(shot, page, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"receipts-{name}-{width}")
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})  # wide again: the nav is not behind "Menu"


def test_support_finds_filters_and_downloads_receipts(new_page, shot, world, memories):
    _, alice_page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    support = new_page()
    sign_in(support, "acme-support")
    support.goto("/t/acme/user/?user_id=alice")
    support.get_by_label("Type alice to confirm").fill("alice")
    support.get_by_role("button", name="Delete all memories of alice").click()
    expect(support.get_by_test_id("deleted")).to_have_text("2")
    support.goto("/t/acme/user/?user_id=alice")
    expect(support.get_by_test_id("erased-on")).to_contain_text("was erased on")
    shots(shot, support, "erased-lookup")

    support.get_by_role("link", name="Erasures", exact=True).click()
    expect(support.get_by_test_id("receipt-count")).to_have_text("1")
    support.get_by_label("Kind").select_option("memory")  # applies at once (htmx)
    expect(support.get_by_test_id("receipt-count")).to_have_text("0")
    support.get_by_label("Kind").select_option("user")
    expect(support.get_by_test_id("receipt-count")).to_have_text("1")
    shots(shot, support, "erasures")
    with support.expect_download() as download:
        support.get_by_role("link", name="Receipt (JSON)").click()
    document = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert receipts.receipt_verify(document)["totals"]["memories"] == 2

    person = new_page()
    person.goto(alice_page)
    expect(person.get_by_test_id("your-receipts")).to_contain_text("A person")
    shots(shot, person, "your-data")
