"""tenants/admin.py: Django admin keeps the members page's rule — a tenant never loses its last admin."""

import pytest

from tenants.models import App, Membership
from tests.factories import MembershipFactory, UserFactory, two_tenant_world


@pytest.fixture
def world(db):
    return two_tenant_world()


@pytest.fixture
def platform(client, world):
    client.force_login(UserFactory(username="platform", is_superuser=True, is_staff=True))
    return client


def test_the_last_admin_cannot_be_demoted_or_deleted_in_membership_admin(platform, world):
    me = world.acme_admin
    url = f"/admin/tenants/membership/{me.pk}/change/"
    demote = platform.post(url, {"user": me.user.pk, "tenant": world.acme.pk, "role": "viewer"})
    assert demote.status_code == 200 and "last admin of the tenant" in demote.content.decode()
    moved = platform.post(url, {"user": me.user.pk, "tenant": world.globex.pk, "role": "admin"})
    assert "last admin of the tenant" in moved.content.decode()
    assert platform.get(f"/admin/tenants/membership/{me.pk}/delete/").status_code == 403
    bulk = platform.post(
        "/admin/tenants/membership/", {"action": "delete_selected", "_selected_action": [me.pk], "post": "yes"}
    )
    assert bulk.status_code == 403
    # Deleting the person's account would take the membership with it: refused too.
    assert platform.post(f"/admin/auth/user/{me.user.pk}/delete/", {"post": "yes"}).status_code == 403
    me.refresh_from_db()
    assert me.role == "admin" and Membership.objects.filter(pk=me.pk).exists()
    # With a second admin the same edits go through.
    MembershipFactory(tenant=world.acme, role="admin", user=UserFactory(username="second"))
    assert platform.post(url, {"user": me.user.pk, "tenant": world.acme.pk, "role": "viewer"}).status_code == 302
    me.refresh_from_db()
    assert me.role == "viewer"


def test_the_tenant_inline_keeps_an_admin_and_deleting_a_tenant_still_works(platform, world):
    tenant, me = world.acme, world.acme_admin
    members = list(Membership.objects.filter(tenant=tenant).order_by("pk"))
    data = {
        "name": tenant.name,
        "slug": tenant.slug,
        "auto_create_apps": "on" if tenant.auto_create_apps else "",
        "apps-TOTAL_FORMS": "0",
        "apps-INITIAL_FORMS": "0",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": str(len(members)),
    }
    for i, m in enumerate(members):
        data.update(
            {
                f"memberships-{i}-id": m.pk,
                f"memberships-{i}-tenant": tenant.pk,
                f"memberships-{i}-user": m.user.pk,
                f"memberships-{i}-role": m.role,
            }
        )
    index, url = members.index(me), f"/admin/tenants/tenant/{tenant.pk}/change/"
    refused = platform.post(url, {**data, f"memberships-{index}-DELETE": "on"})
    assert refused.status_code == 200 and "last admin of the tenant" in refused.content.decode()
    demoted = platform.post(url, {**data, f"memberships-{index}-role": "viewer"})
    assert demoted.status_code == 200 and "last admin of the tenant" in demoted.content.decode()
    assert Membership.objects.get(pk=me.pk).role == "admin"
    # The whole tenant can still be deleted: its admin goes with it.
    confirm = platform.get(f"/admin/tenants/tenant/{tenant.pk}/delete/")
    assert confirm.status_code == 200 and "Yes, I’m sure" in confirm.content.decode()


def test_apps_created_in_django_admin_are_placed_on_a_store(platform, world):
    """App.save() chooses no store (that is network I/O); both ways Django admin creates an app place it."""
    form = {
        "tenant": world.acme.pk,
        "app_id": "from_admin",
        "name": "A",
        "collection_name": "",
        "status": "active",
        "store": "",
    }
    added = platform.post("/admin/tenants/app/add/", form)
    assert added.status_code == 302 and App.objects.get(app_id="from_admin").store == "default"
    tenant = world.globex
    members = list(Membership.objects.filter(tenant=tenant).order_by("pk"))
    data = {
        "name": tenant.name,
        "slug": tenant.slug,
        "auto_create_apps": "on" if tenant.auto_create_apps else "",
        "apps-TOTAL_FORMS": "1",
        "apps-INITIAL_FORMS": "0",
        "apps-0-app_id": "inline_app",
        "apps-0-name": "B",
        "apps-0-collection_name": "",
        "apps-0-status": "active",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": str(len(members)),
    }
    for i, m in enumerate(members):
        data.update(
            {
                f"memberships-{i}-id": m.pk,
                f"memberships-{i}-tenant": tenant.pk,
                f"memberships-{i}-user": m.user.pk,
                f"memberships-{i}-role": m.role,
            }
        )
    saved = platform.post(f"/admin/tenants/tenant/{tenant.pk}/change/", data)
    assert saved.status_code == 302 and App.objects.get(tenant=tenant, app_id="inline_app").store == "default"
