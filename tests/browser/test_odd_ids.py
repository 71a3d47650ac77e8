"""In a real browser: a user whose ids hold "/", "..", "%2F" (written by a Mem0 OSS agent) and an app stored
before the app_id alphabet can be looked at and followed link by link
(each id travels percent-encoded in one path segment)."""

import pytest
from playwright.sync_api import expect

from memadmin.memory import services
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world
from tests.memadmin.memory.rawhash import put
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser


def test_odd_ids_and_a_legacy_app_in_the_browser(new_page, shot, transactional_db, raw_valkey):
    world = two_tenant_world()
    admin = scope_for_membership(world.acme_admin)
    services.memory_add(scope=admin, app_id="concierge_app", user_id="a/b", messages="first, to create the index")
    App.objects.create(tenant=world.acme, app_id="x/y", name="Legacy app")
    admin = scope_for_membership(world.acme_admin)  # now with the legacy app
    services.memory_add(scope=admin, app_id="x/y", user_id="a/b", messages="kept in an app named x/y")
    collection = App.objects.get(tenant=world.acme, app_id="concierge_app").collection_name
    put(
        raw_valkey,
        collection,
        memory_id="../%2F/evil",
        user_id="a/b",
        agent_id="..",
        run_id="%2F",
        text="written by a Mem0 OSS agent with odd ids",
    )
    put(raw_valkey, collection, memory_id="..", user_id="a/b", text="a memory whose id is two dots")

    for width, height in ((1366, 900), (390, 844)):
        page = new_page()
        page.set_viewport_size({"width": width, "height": height})
        sign_in(page, "acme-admin")
        page.goto("/t/acme/")
        expect(page.get_by_text("x/y").first).to_be_visible()
        shot(page, f"security-legacy-app-overview-{width}")
        page.goto("/t/acme/user/?user_id=a%2Fb")
        expect(page.get_by_text("written by a Mem0 OSS agent with odd ids")).to_be_visible()
        expect(page.get_by_text("kept in an app named x/y")).to_be_visible()
        shot(page, f"security-odd-ids-user-{width}")
        page.get_by_role("link", name="written by a Mem0 OSS agent with odd ids").click()
        expect(page.get_by_text("../%2F/evil").first).to_be_visible()
        shot(page, f"security-odd-ids-detail-{width}")
        page.go_back()
        page.get_by_role("link", name="a memory whose id is two dots").click()  # not a ".." step to the browser
        expect(page.get_by_role("heading", name="a memory whose id is two dots")).to_be_visible()
        assert "/~../" in page.url
