"""An admin sets up a webhook in a real browser, copies its secret, sends a test event to a real receiver and
verifies the signature with that secret; no CSP violation on the way."""

import pytest
import standardwebhooks
from playwright.sync_api import expect

from tests.support.browser import sign_in

pytestmark = pytest.mark.browser


def test_create_test_and_verify_a_webhook(new_page, world, receiver, shot):
    page = new_page()
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
    sign_in(page, "acme-admin")
    page.goto("/t/acme/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.get_by_label("Name").fill("crm-sync")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_role("checkbox", name="app.offboarded").uncheck()
    page.get_by_role("button", name="Create webhook").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("whsec_")
    page.get_by_role("button", name="Send a test event").click()
    expect(page.locator("#toasts")).to_contain_text("Test event delivered: HTTP 200")
    expect(page.locator("#delivery-log")).to_contain_text("Test event")
    assert page.locator("#new-secret").count() == 0  # shown once
    shot(page, "webhook-tested")
    [request] = receiver.wait_for(1)
    assert standardwebhooks.Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"
    assert violations == []
