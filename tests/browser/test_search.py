"""The dashboard's hybrid search over the demo's facts, in a real headless Chromium: what is meant shows as a
close match, the weaker ones one click away, and the pushed URL reloads to the same results."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import sign_in

pytestmark = pytest.mark.browser

WIDTHS = (1366, 390)


@pytest.fixture
def demo_facts(world, add):
    from tenants.management.commands.seed_demo import FACTS

    for i, fact in enumerate(FACTS):
        add(world.acme, "concierge_app" if i % 2 else "sports_portal", f"guest_{i % 3}", fact)


def _count(page) -> int:
    return int(re.search(r"(\d+)", page.locator("#results .results-summary").inner_text()).group(1))


def test_a_search_for_what_is_meant_shows_it_as_close(new_page, shot, world, demo_facts):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/memories/")
    page.get_by_label("Search").fill("medical conditions")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#results")).to_contain_text("close match")
    expect(page.locator("#results tbody tr").first).to_contain_text("lactose intolerant")
    expect(page).to_have_url(re.compile(r"q=medical(\+|%20)conditions"))
    close = _count(page)
    assert close == page.locator("#results tbody tr").count()  # the summary counts the rows shown
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"search-close-{width}")

    page.get_by_role("link", name="Show weaker matches").click()
    expect(page.locator("#results")).to_contain_text("Show close matches only")
    expect(page.locator("#results")).to_contain_text("allergic to peanuts")
    weaker = _count(page)
    assert weaker > close and weaker == page.locator("#results tbody tr").count()
    page.set_viewport_size({"width": 1366, "height": 900})
    shot(page, "search-weaker-1366")
    page.reload()  # the pushed URL is the view
    expect(page.locator("#results")).to_contain_text("Show close matches only")
    assert _count(page) == weaker


def test_a_persons_search_ranks_the_memory_holding_the_word_first(new_page, shot, world, demo_facts):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/user/?user_id=guest_1")
    page.get_by_label("Search guest_1's memories").fill("Saturday")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("close match")
    expect(page.locator("#results tbody tr").first).to_contain_text("Saturday")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"search-person-{width}")


def test_an_end_users_own_search_is_hybrid_too(new_page, shot, world, demo_facts):
    from tenants.links import data_link_issue
    from tenants.scoping import scope_for_membership

    _, path = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="guest_1")
    page = new_page()  # no staff session: only the link
    page.goto(path)
    page.get_by_label("Search your memories").fill("Saturday")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("close match")
    expect(page.locator("#results tbody tr").first).to_contain_text("Saturday")
    from tenants.management.commands.seed_demo import FACTS

    own = {fact for i, fact in enumerate(FACTS) if i % 3 == 1}  # guest_1's, as demo_facts shares them out
    assert {text.strip() for text in page.locator("#results tbody td.memory-text").all_inner_texts()} <= own
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"search-your-data-{width}")
