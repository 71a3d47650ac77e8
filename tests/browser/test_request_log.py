"""In a real browser: an admin opens one key's API request log by clicks from the nav, sees the requests that
key made (and not another key's), narrows them to errors with a filter, and the page stays true after a
reload."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tenants.models import TenantAPIKey
from tests.factories import two_tenant_world
from tests.support.browser import htmx_settled, sign_in

pytestmark = pytest.mark.browser


def test_admin_opens_a_keys_request_log_by_clicks_and_sees_its_requests(new_page, shot, transactional_db):
    world = two_tenant_world()
    _, crm_key = TenantAPIKey.objects.create_key(name="crm-backend", tenant=world.acme)
    _, other_key = TenantAPIKey.objects.create_key(name="search-worker", tenant=world.acme)
    crm = Client(headers={"Authorization": f"Token {crm_key}"})
    assert crm.get("/v1/entities/").status_code == 200
    bad = crm.post("/v3/memories/add/", {"messages": "x", "app_id": "no such app!"}, "application/json")
    assert bad.status_code == 400
    assert Client(headers={"Authorization": f"Token {other_key}"}).get("/v1/ping/").status_code == 200

    page = new_page()
    sign_in(page, "acme-admin")
    page.get_by_role("link", name="API keys").first.click()
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"request-log-api-keys-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_role("link", name="Requests made with key crm-backend").click()
    expect(page.get_by_role("heading", name="API requests", level=1)).to_be_visible()
    rows = page.get_by_test_id("request-row")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="/v1/entities/")).to_contain_text("200")
    expect(rows.filter(has_text="/v3/memories/add/")).to_contain_text("400")
    expect(page.get_by_text("search-worker")).to_have_count(1)  # only as a choice of the key filter
    expect(page.get_by_test_id("request-count")).to_have_text("2")
    expect(page.get_by_test_id("chart-errors")).to_have_text("1")
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"request-log-key-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.get_by_label("Status").select_option("errors")
    htmx_settled(page)
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("request-count")).to_have_text("1")
    assert "status=errors" in page.url and "key=" in page.url
    page.reload()
    expect(page.get_by_test_id("request-row")).to_have_count(1)
    expect(page.get_by_test_id("request-row")).to_contain_text("/v3/memories/add/")
    expect(page.get_by_label("Status")).to_have_value("errors")


def test_admin_opens_an_apps_request_log_from_the_app_page(new_page, shot, transactional_db):
    world = two_tenant_world()
    row, key = TenantAPIKey.objects.create_key(name="sports-bot", tenant=world.acme)
    row.apps.set([world.acme_sports])
    assert Client(headers={"Authorization": f"Token {key}"}).get("/v1/entities/").status_code == 200
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/apps/sports_portal/")
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"request-log-app-page-{width}")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_role("link", name="API requests").click()
    expect(page.get_by_label("App")).to_have_value("sports_portal")
    expect(page.get_by_test_id("request-row")).to_have_count(1)
    expect(page.get_by_test_id("request-row")).to_contain_text("sports-bot")
