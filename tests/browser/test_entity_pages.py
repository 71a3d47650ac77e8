"""Agents, Runs and bulk selection in a real browser, by clicks only: support finds an agent by id, deletes a
run's memories from the Runs page and finds each person's receipt; ticks rows on a person's page and deletes
them; an admin selects every memory matching a filter and exports them. After each action every count on the
page equals the store. Screenshots at 1366 and 390 px wide (test-artifacts/entities-*.png)."""

import json
import re

import pytest
from playwright.sync_api import expect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.scoping import scope_for_membership
from tests.support.browser import JOB_TIMEOUT_MS, sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)
# The elements that stick out past the screen's right edge, to name them when a page is too wide.
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"""


def shots(shot, page, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(f"window.innerWidth === {width}")
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name}: {overflow}px wider than a {width}px screen: {page.evaluate(TOO_WIDE)}"
        shot(page, f"entities-{name}-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})


def stored(world, **fields) -> int:
    return selectors.memory_count(scope=scope_for_membership(world.acme_admin), filters=filter_from_fields(**fields))


def people(world, **fields) -> int:
    scope = scope_for_membership(world.acme_admin)
    return len(selectors.memory_group_counts(scope=scope, field="user_id", filters=filter_from_fields(**fields)))


@pytest.fixture
def trips(world, add):
    """trip-42: li_wei 3 and bob 1 (concierge); week-7: li_wei 1 (coach, sports_portal); globex has a trip-42 too."""
    for text in ("Li Wei prefers window seats", "Li Wei flies to Lisbon in May", "Li Wei travels with a cat"):
        add(world.acme, "concierge_app", "li_wei", text, agent_id="concierge", run_id="trip-42")
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge", run_id="trip-42")
    add(world.acme, "sports_portal", "li_wei", "Li Wei runs 10k on Saturdays", agent_id="coach", run_id="week-7")
    add(world.globex, "concierge_app", "carol", "Globex Carol likes sushi", agent_id="butler", run_id="trip-42")


def head_counts(page) -> tuple[int, int]:
    text = page.get_by_test_id("entity-counts").inner_text()
    found = re.search(r"(\d+) memor(?:y|ies) of (\d+) (?:person|people)", text)
    return int(found[1]), int(found[2])


def test_support_finds_an_agent_by_id(new_page, shot, world, trips):
    page = new_page()
    sign_in(page, "acme-support")
    page.get_by_role("link", name="Agents", exact=True).click()
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    shots(shot, page, "agents")
    page.get_by_label("Agent id starts with").fill("conc")
    page.get_by_role("button", name="Find").click()
    rows = page.get_by_test_id("agent-list").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("entity-count")).to_have_text(str(stored(world, agent_id="concierge")))
    expect(rows.first.get_by_test_id("entity-people")).to_have_text(str(people(world, agent_id="concierge")))
    rows.first.get_by_role("link", name="concierge").click()
    expect(page.get_by_role("heading", name=re.compile("concierge"))).to_be_visible()
    assert head_counts(page) == (stored(world, agent_id="concierge"), people(world, agent_id="concierge")) == (4, 2)
    expect(page.get_by_test_id("total")).to_have_text("4")
    expect(page.locator("#results tbody tr")).to_have_count(4)
    shots(shot, page, "agent")


def test_support_deletes_a_runs_memories_from_the_runs_page_and_finds_the_receipts(new_page, shot, world, trips):
    page = new_page()
    sign_in(page, "acme-support")
    page.get_by_role("link", name="Runs", exact=True).click()
    row = page.locator('tr[data-entity="trip-42"]')
    expect(row.get_by_test_id("entity-count")).to_have_text("4")
    expect(row.get_by_test_id("entity-people")).to_have_text("2")
    shots(shot, page, "runs")
    row.get_by_role("link", name="trip-42").click()
    expect(page.get_by_test_id("preview")).to_contain_text("4 memories of 2 people in 1 app will be deleted")
    shots(shot, page, "run")
    page.get_by_label("Type trip-42 to confirm").fill("trip-42")
    page.get_by_role("button", name=re.compile("^Delete this run")).click()
    expect(page.get_by_test_id("deleted")).to_have_text("4")
    expect(page.get_by_test_id("remaining")).to_have_text("0")
    receipts = page.get_by_test_id("receipts").locator("tbody tr")
    expect(receipts).to_have_count(2)
    expect(receipts.filter(has_text="li_wei")).to_contain_text("A run (session)")
    shots(shot, page, "run-deleted")
    assert stored(world, run_id="trip-42") == 0 and stored(world, run_id="week-7") == 1
    page.get_by_role("link", name="← Back").click()
    expect(page.locator('tr[data-entity="week-7"] [data-testid="entity-count"]')).to_have_text("1")
    expect(page.locator('tr[data-entity="trip-42"]')).to_have_count(0)
    page.get_by_role("link", name="Erasures", exact=True).click()
    expect(page.get_by_test_id("receipts").locator("tbody tr").filter(has_text="li_wei")).to_contain_text(
        "A run (session)"
    )


def test_support_ticks_rows_on_a_persons_page_and_deletes_them(new_page, shot, world, trips):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/user/?user_id=li_wei")
    boxes = page.locator('#results input[name="m"]')
    expect(boxes).to_have_count(4)
    page.get_by_test_id("select-page").check()  # ticks every row's box
    for box in boxes.all():
        expect(box).to_be_checked()
    boxes.first.uncheck()  # ...and one row less: the page box goes, the three ticked rows stay
    expect(page.get_by_test_id("select-page")).not_to_be_checked()
    shots(shot, page, "user-selected")
    page.get_by_test_id("bulk-delete").click()
    expect(page.get_by_test_id("preview")).to_contain_text("3 memories of 1 person in")
    shots(shot, page, "selection-confirm")
    page.get_by_label(re.compile("^Type 3")).fill("3")
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_test_id("deleted")).to_have_text("3")
    expect(page.get_by_test_id("receipts").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name="← Back").click()
    expect(page.locator("#counts")).to_contain_text(re.compile(rf"\b{stored(world, user_id='li_wei')} memory\b"))
    assert stored(world, user_id="li_wei") == 1
    expect(page.locator("#results tbody tr")).to_have_count(1)


def test_admin_selects_all_matching_across_pages_and_exports_them(new_page, shot, world, add):
    for n in range(30):
        add(world.acme, "concierge_app" if n % 3 else "sports_portal", "zoe", f"Zoe note {n}", infer=False)
    add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", infer=False)
    page = new_page()
    sign_in(page, "acme-admin")
    page.get_by_role("link", name="Memories", exact=True).click()
    page.get_by_label("User").fill("zoe")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("total")).to_have_text(str(stored(world, user_id="zoe")))
    expect(page.get_by_test_id("select-all")).to_be_visible()
    page.get_by_test_id("select-all").check()
    shots(shot, page, "memories-select-all")
    page.get_by_test_id("bulk-export").click()
    expect(page.get_by_test_id("preview")).to_contain_text("30 memories of 1 person in 2 apps will be exported")
    page.get_by_test_id("confirm-export").click()
    expect(page.get_by_test_id("job-state")).to_be_visible()
    job = Job.objects.get(tenant=world.acme, kind=Job.Kind.EXPORT_TENANT)
    assert run_job(job.pk) == "succeeded"  # what the worker does; the page polls for it
    expect(page.get_by_test_id("job-state")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_test_id("job-selection")).to_be_visible()
    shots(shot, page, "export-job")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download export").click()
    lines = [json.loads(line) for line in open(download.value.path(), encoding="utf-8") if line.strip()]
    assert len(lines) == 30 and {item["user_id"] for item in lines} == {"zoe"}
    assert stored(world) == 31  # nothing deleted


def test_a_memory_deleted_in_place_on_a_run_page_leaves_every_count_true(new_page, world, trips):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/runs/run/?run_id=trip-42")
    assert head_counts(page) == (4, 2)
    bob = page.locator("#results tbody tr", has_text="Bob prefers aisle seats")
    bob.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#results tbody tr")).to_have_count(3)
    # The head and the total are re-read after the row goes (memories-changed): wait for them, then compare.
    expect(page.get_by_test_id("entity-counts")).to_contain_text("3 memories of 1 person")
    expect(page.get_by_test_id("total")).to_have_text("3")
    expect(page.get_by_test_id("select-all").locator("xpath=..")).to_contain_text("Select all 3 matching")
    expect(page.get_by_test_id("preview")).to_contain_text("3 memories of 1 person in 1 app will be deleted")
    expect(page.get_by_role("button", name="Delete this run's 3 memories")).to_be_visible()
    assert head_counts(page) == (stored(world, run_id="trip-42"), people(world, run_id="trip-42")) == (3, 1)
    page.reload()
    assert head_counts(page) == (3, 1)
