"""tenants/views/members.py: members (add, change role, remove, last admin) and agents."""

from tests.tenants.views.conftest import login


def test_members_add_change_remove_and_last_admin(client, world):
    from tenants.models import Membership
    from tests.factories import UserFactory

    login(client, world.acme_admin)
    newcomer = UserFactory(username="newcomer", email="new@example.com")
    assert client.post("/t/acme/members/add/", {"username": "new@example.com", "role": "support"}).status_code == 302
    member = Membership.objects.get(user=newcomer, tenant=world.acme)
    assert member.role == "support"
    assert client.post("/t/acme/members/add/", {"username": "ghost", "role": "viewer"}).status_code == 400
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "admin"}).status_code == 302
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "owner"}).status_code == 400
    assert client.post(f"/t/acme/members/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    # The last admin cannot demote or remove themselves.
    me = world.acme_admin
    assert client.post(f"/t/acme/members/{me.pk}/role/", {"role": "viewer"}).status_code == 409
    assert client.post(f"/t/acme/members/{me.pk}/remove/").status_code == 409
    # Another tenant's membership id is not found.
    assert client.post(f"/t/acme/members/{world.globex_viewer.pk}/remove/").status_code == 404


def test_members_page_lists_agents_with_counts(client, world, memories):
    login(client, world.acme_admin)
    html = client.get("/t/acme/members/").content.decode()
    assert "acme-support" in html and "concierge" in html and "coach" in html and "butler" not in html
