"""In a real browser: an admin creates a key that may not offboard apps, turns offboarding on and off by clicks,
and the row says so after each swap and after a reload."""

import pytest
from playwright.sync_api import expect

from tenants.models import TenantAPIKey
from tests.factories import two_tenant_world
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser


def test_admin_turns_offboarding_off_and_on_for_a_key(new_page, shot, transactional_db):
    world = two_tenant_world()
    TenantAPIKey.objects.create_key(name="narrow", tenant=world.acme)[0].apps.set([world.acme_sports])
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/keys/")
    page.get_by_label("Name").fill("crm-backend")
    page.get_by_label("May offboard an app").uncheck()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_contain_text("crm-backend")
    row = page.locator("tr", has_text="crm-backend")
    expect(row.get_by_test_id("key-offboarding")).to_have_text("off")
    expect(page.locator("tr", has_text="narrow").get_by_test_id("key-offboarding")).to_have_text("never")

    row.get_by_role("button", name="Turn on offboarding for key crm-backend").click()
    expect(row.get_by_test_id("key-offboarding")).to_have_text("allowed")
    assert TenantAPIKey.objects.get(name="crm-backend").may_offboard is True
    row.get_by_role("button", name="Turn off offboarding for key crm-backend").click()  # confirm dialog accepted
    expect(row.get_by_test_id("key-offboarding")).to_have_text("off")
    assert TenantAPIKey.objects.get(name="crm-backend").may_offboard is False
    page.reload()
    expect(page.locator("tr", has_text="crm-backend").get_by_test_id("key-offboarding")).to_have_text("off")
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"api-keys-offboarding-{width}")
