"""Registering a Mem0 OSS collection that lives on the second store (MEMADMIN_STORES), in a real browser: the
form names the store, the claim is asked for on that store, and the app is made there. Screenshots at 1366 and
390 px wide."""

import pytest
from playwright.sync_api import expect

from memadmin.memory import index
from tenants.collection_claims import collection_claim_token
from tenants.models import App
from tests.memadmin.memory.rawhash import put
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser
WIDTHS = (1366, 390)


def test_register_a_collection_on_the_second_store(new_page, shot, world, two_stores):
    second = two_stores.client()
    second.execute_command(*index.schema("eu_bot", algorithm="flat"))  # what the agents' Mem0 made there
    for n in range(3):
        put(second, "eu_bot", user_id="Dana", text=f"Dana's preference {n}")
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/register-collection/")
    page.get_by_label("New app_id").fill("eu")
    page.get_by_label("Mem0 collection name").fill("eu_bot")
    page.get_by_label("Memory store your agents write it to").select_option("second")
    page.get_by_role("button", name="Continue").click()
    claim = page.get_by_test_id("claim")
    expect(page.get_by_test_id("claim-store")).to_have_text("second")
    expect(claim).to_contain_text(collection_claim_token(tenant=world.acme, collection="eu_bot"))
    expect(page.get_by_label("Memory store your agents write it to")).to_have_value("second")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"register-collection-second-store-{width}")

    second.set("memadmin:claim:eu_bot", collection_claim_token(tenant=world.acme, collection="eu_bot"))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("app-store")).to_contain_text("second")
    assert App.objects.get(tenant=world.acme, app_id="eu").store == "second"
