"""The strict CSP in a real browser: the dashboard (htmx), the your-data page, Swagger UI and Redoc all
work with no CSP violation in the console."""

import os

import pytest

from memadmin.memory import services
from tenants.links import data_link_issue
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world
from tests.support.browser import ACTION_TIMEOUT_MS

pytestmark = pytest.mark.browser
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop beside the ORM, as tests/browser


@pytest.fixture
def page(browser, live_server, transactional_db):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    page.violations = []
    page.on("console", lambda m: page.violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: page.violations.append(f"page error: {e}"))
    yield page
    context.close()


@pytest.fixture
def world(transactional_db):
    w = two_tenant_world()
    scope = scope_for_membership(w.acme_admin)
    for text in ("Alice likes green tea", "Alice plays chess"):
        services.memory_add(scope=scope, app_id="concierge_app", messages=text, user_id="alice")
    _link, w.link = data_link_issue(scope=scope, user_id="alice")
    return w


def test_dashboard_and_htmx_work_under_the_policy(page, world):
    from playwright.sync_api import expect

    page.goto("/login/")
    page.get_by_label("Username").fill("acme-admin")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    page.goto("/t/acme/user/?user_id=alice")
    page.get_by_label("Search").first.fill("tea")
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true"):  # htmx ran, under the CSP
        page.get_by_role("button", name="Search").first.click()
    expect(page.locator("#results")).to_contain_text("green tea")
    for url in ("/t/acme/", "/t/acme/memories/", "/t/acme/members/", "/t/acme/audit/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    assert page.violations == []


def test_your_data_page_works_under_the_policy(page, world):
    from playwright.sync_api import expect

    page.goto(world.link)
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.get_by_label("Search your memories").fill("chess")
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true"):
        page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("chess")
    assert page.violations == []


def test_swagger_ui_and_redoc_render_under_the_policy(page, world):
    from playwright.sync_api import expect

    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("memadmin API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.goto("/api/redoc/")
    expect(page.locator("h1")).to_contain_text("memadmin API")
    page.wait_for_load_state("networkidle")
    assert page.violations == []
