"""A person's pages in a real browser: support deletes one run from the user page by clicks and finds its signed
receipt on the Erasures page, a viewer's list on the memory browser shows on the person's "who looked" list, and
an admin revokes the link of a person who has no memories left. Screenshots at 1366 and 390 px wide
(test-artifacts/people-*.png)."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.receipts import receipt_verify
from tenants.links import data_link_issue
from tenants.models import DataLink
from tenants.scoping import scope_for_membership
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


def shots(shot, page, name):
    for width in WIDTHS:
        _resize(page, width)
        shot(page, f"people-{name}-{width}")
    _resize(page, 1366)


def _resize(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    # Let the media queries and the table layout settle at this width before a picture or a click.
    page.wait_for_function(f"window.innerWidth === {width}")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def stored(world, **fields) -> int:
    scope = scope_for_membership(world.acme_admin)
    return selectors.memory_count(scope=scope, filters=filter_from_fields(**fields))


def test_support_deletes_a_run_from_the_user_page(new_page, shot, world, add):
    for text in ("Li Wei prefers window seats", "Li Wei flies to Lisbon in May", "Li Wei travels with a cat"):
        add(world.acme, "concierge_app", "li_wei", text, agent_id="concierge", run_id="trip-42")
    add(world.acme, "sports_portal", "li_wei", "Li Wei runs 10k on Saturdays", agent_id="coach", run_id="week-7")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge", run_id="trip-42")
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/user/?user_id=li_wei")
    runs = page.get_by_test_id("runs")
    expect(runs.locator('tr[data-run="trip-42"] [data-testid="run-count"]')).to_have_text("3")
    shots(shot, page, "user-runs")
    row = runs.locator('tr[data-run="trip-42"]')
    row.get_by_text("Delete…").click()
    expect(row.get_by_text("Delete this run: 3 memories of li_wei in run trip-42")).to_be_visible()
    shots(shot, page, "user-run-confirm")
    row.get_by_label("Type trip-42 to confirm").fill("trip-42")
    row.get_by_role("button", name="Delete this run").click()
    page.wait_for_load_state()
    expect(page.get_by_text("Deleted run trip-42: 3 memories, counted 0 remaining in the store.")).to_be_visible()
    # The page after the swap says what the store says.
    assert stored(world, user_id="li_wei", run_id="trip-42") == 0 and stored(world, user_id="bob") == 1
    expect(page.locator('tr[data-run="trip-42"]')).to_have_count(0)
    expect(page.locator('tr[data-run="week-7"] [data-testid="run-count"]')).to_have_text(
        str(stored(world, user_id="li_wei", run_id="week-7"))
    )
    expect(page.locator("#counts")).to_contain_text(f"{stored(world, user_id='li_wei')} memory")
    shots(shot, page, "user-run-deleted")
    page.reload()  # reload-safe: nothing is posted again, the page is the store
    expect(page.locator('tr[data-run="trip-42"]')).to_have_count(0)
    assert stored(world, user_id="li_wei") == 1

    # Its receipt, where people look for one: the Erasures page, filtered to the person by clicks.
    page.get_by_role("navigation").get_by_role("link", name="Erasures").first.click()
    page.get_by_label("Person").fill("li_wei")
    page.get_by_label("Kind").select_option(label="A run (session)")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("receipt-count")).to_have_text("1")
    receipt = page.get_by_test_id("receipts").locator("tbody tr")
    expect(receipt).to_contain_text("A run (session)")
    expect(receipt).to_contain_text("li_wei")
    expect(receipt.locator("td.num")).to_have_text("3")
    expect(receipt).to_contain_text("acme-support")
    expect(receipt).to_contain_text("on disk until at most")  # no purge has run in this test
    with page.expect_download() as download:
        receipt.get_by_role("link", name="Receipt (JSON)").click()
    document = json.loads(Path(download.value.path()).read_text())
    assert receipt_verify(document)["kind"] == "run" and "Li Wei" not in json.dumps(document)
    shots(shot, page, "erasures-run-receipt")


def test_a_viewers_list_on_the_memory_browser_is_on_the_persons_who_looked_list(new_page, shot, world, add):
    for n in range(6):
        add(world.acme, "concierge_app", "li_wei", f"Li Wei note number {n} about travel", agent_id="concierge")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge")
    _link, path = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="li_wei")
    viewer = new_page()
    sign_in(viewer, "acme-viewer")
    viewer.goto("/t/acme/memories/")
    expect(viewer.get_by_text("Li Wei note number 0 about travel")).to_be_visible()
    person = new_page()
    person.goto(path)
    accesses = person.get_by_test_id("accesses")
    expect(accesses).to_contain_text("A viewer (acme-viewer) listed 6 of your memories on the memory browser")
    expect(accesses).not_to_contain_text("bob")
    shots(shot, person, "who-looked")


def test_an_admin_revokes_the_link_of_a_person_with_no_memories_left(new_page, shot, world, add):
    add(world.acme, "concierge_app", "li_wei", "Li Wei prefers window seats", agent_id="concierge")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge")
    link, path = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="li_wei")
    person = new_page()
    person.goto(path)
    person.get_by_label("I understand that all my memories will be deleted permanently.").check()
    person.get_by_role("button", name="Delete all my memories").click()
    person.wait_for_load_state()
    assert stored(world, user_id="li_wei") == 0
    admin = new_page()
    sign_in(admin, "acme-admin")
    admin.goto("/t/acme/users/")
    expect(admin.get_by_role("link", name="li_wei", exact=True)).to_have_count(0)  # erased: not "recently seen"
    admin.goto("/t/acme/user/?user_id=li_wei")
    expect(admin.get_by_test_id("no-memories")).to_be_visible()
    table = admin.get_by_test_id("link-table")
    expect(table.get_by_text("active")).to_be_visible()
    shots(shot, admin, "user-none-links")
    table.get_by_role("button", name="Revoke").click()
    admin.wait_for_load_state()
    shots(shot, admin, "link-confirm")
    admin.get_by_role("button", name="Revoke the link").click()
    admin.wait_for_load_state()
    expect(admin.get_by_text("The link for li_wei no longer works.")).to_be_visible()
    assert DataLink.objects.get(pk=link.pk).revoked_at is not None
    admin.goto("/t/acme/links/")
    expect(admin.get_by_test_id("link-table").locator(f'tr[data-link="{link.pk}"]')).to_contain_text("revoked")
    shots(shot, admin, "links")
    person.goto(path)
    expect(person.get_by_text("This link has been revoked.")).to_be_visible()
