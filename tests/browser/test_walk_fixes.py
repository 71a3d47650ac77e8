"""In a real browser, at 1366 and 390 px: what a full walk of the demo found, fixed. The overview counts live apps
only; the keys page creates a read-only, expiring key with app checkboxes; on a phone no Revoke or Remove button
and no audit column is off-screen; at 1366 the audit log's IP column is not cut off; the person page's chips and
the memory page's way back lead where they say."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tenants.models import App, TenantAPIKey
from tests.support.browser import sign_in

pytestmark = pytest.mark.browser

WIDTHS = ((1366, 900), (390, 844))


def _inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5


def test_admin_walk_keys_members_audit_and_overview(new_page, shot, world, memories):
    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.OFFBOARDED)
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/")
    expect(page.locator(".stat", has_text="app")).to_contain_text("1")
    page.goto("/t/acme/keys/")
    page.get_by_label("Name").fill("reporting")
    page.get_by_role("checkbox", name="concierge_app").check()
    page.get_by_role("checkbox", name="Read-only: this key searches").check()
    day = timezone.localdate() + timedelta(days=30)
    page.get_by_label("Expires on").fill(day.isoformat())
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_contain_text("reporting")
    row = page.locator("tr", has_text="reporting")
    expect(row.get_by_test_id("key-access")).to_have_text("read-only")
    expect(row.get_by_test_id("key-expires")).to_have_text(f"{day:%b} {day.day}, {day.year}")
    key = TenantAPIKey.objects.get(name="reporting")
    assert key.read_only and list(key.apps.values_list("app_id", flat=True)) == ["concierge_app"]
    page.goto("/t/acme/user/?user_id=alice")  # something for the audit log
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        for name, url in (
            ("overview", "/t/acme/"),
            ("api-keys", "/t/acme/keys/"),
            ("members", "/t/acme/members/"),
            ("audit", "/t/acme/audit/"),
            ("app", "/t/acme/apps/concierge_app/"),
        ):
            page.goto(url)
            shot(page, f"walk-{name}-{width}")
        page.goto("/t/acme/keys/")
        assert _inside_viewport(page, page.get_by_role("button", name="Revoke key reporting")), width
        page.goto("/t/acme/members/")
        remove = page.get_by_role("button", name="Remove").first
        assert _inside_viewport(page, remove), width
        page.goto("/t/acme/audit/")
        first = page.locator("table.audit tbody tr").first
        for cell in ("td.action", "td.ip"):
            assert _inside_viewport(page, first.locator(cell)), (width, cell)
        wrap = page.locator(".table-wrap", has=page.locator("table.audit"))
        assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), width  # nothing behind a sideways scroll


def test_support_follows_chips_and_comes_back_to_the_person(new_page, shot, world, memories):
    page = new_page()
    sign_in(page, "acme-support")
    page.goto("/t/acme/user/?user_id=alice")
    page.get_by_test_id("chip-agent").filter(has_text="coach").click()
    expect(page.locator("#results")).to_contain_text("tennis")
    page.goto("/t/acme/user/?user_id=alice")
    page.get_by_role("link", name=memories.alice_food.memory).click()
    back = page.get_by_test_id("memory-back")
    expect(back).to_have_text("← Back to alice")
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"walk-memory-detail-{width}")
        page.goto("/t/acme/user/?user_id=alice")
        shot(page, f"walk-user-{width}")
        page.goto("/t/acme/audit/")
        expect(page.get_by_role("heading", name="Your actions")).to_be_visible()
        shot(page, f"walk-audit-support-{width}")
    page.goto("/t/acme/user/?user_id=alice")
    page.get_by_role("link", name=memories.alice_food.memory).click()
    page.get_by_test_id("memory-back").click()
    assert "/t/acme/user/" in page.url


def test_invite_form_and_invitation_page_look_like_the_rest(new_page, shot, world, mailoutbox):
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/members/")
    email = page.locator('input[name="email"]')
    assert email.bounding_box()["height"] >= 34  # styled like every input (it was 21 px, an inset border)
    assert email.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"walk-members-invite-{width}")
    email.fill("dave@example.com")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("body")).to_contain_text("dave@example.com")
    link = re.search(r"https?://\S+/invitations/\S+/", mailoutbox[-1].body).group(0)
    newcomer = new_page()
    newcomer.goto(link[link.index("/invitations/") :])
    expect(newcomer.get_by_role("button", name="Create account and join")).to_have_class("btn btn-primary btn-block")
    newcomer.get_by_label("Username").fill("dave")
    newcomer.get_by_label("Password", exact=True).fill("correct-horse-battery-9")
    newcomer.get_by_label("Password again").fill("something-else-entirely-9")
    newcomer.get_by_role("button", name="Create account and join").click()
    expect(newcomer.get_by_role("alert")).to_contain_text("Password again:")
    for width, height in WIDTHS:
        newcomer.set_viewport_size({"width": width, "height": height})
        shot(newcomer, f"walk-invitation-error-{width}")


def test_export_first_leads_back_to_the_offboarding(new_page, shot, world, memories):
    page = new_page()
    sign_in(page, "acme-admin")
    page.goto("/t/acme/apps/concierge_app/offboard/")
    page.get_by_role("button", name="Export concierge_app to a file").click()
    back = page.get_by_test_id("job-back")
    expect(back).to_have_text("← Back to offboarding concierge_app")
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"walk-export-job-{width}")
    page.reload()  # reload-safe: the way back is in the address
    page.get_by_test_id("job-back").click()
    expect(page.get_by_role("heading", name="Offboard concierge_app")).to_be_visible()
    page.goto("/t/acme/jobs/")
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"walk-jobs-{width}")


def test_after_delete_all_the_person_is_offered_nothing_left_to_delete(new_page, shot, world, memories):
    from tenants.links import data_link_issue
    from tenants.scoping import scope_for_membership

    _, path = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    page = new_page()
    page.goto(path)
    expect(page.get_by_test_id("download")).to_be_visible()
    page.get_by_label("I understand that all my memories will be deleted permanently.").check()
    page.get_by_role("button", name="Delete all my memories").click()
    expect(page.get_by_test_id("deleted-result")).to_contain_text("Your memories are deleted")
    expect(page.get_by_test_id("delete-everything")).to_have_count(0)
    expect(page.get_by_test_id("download")).to_have_count(0)
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, f"walk-your-data-deleted-{width}")
