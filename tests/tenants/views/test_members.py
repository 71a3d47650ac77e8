"""tenants/views/members.py: members (invite, change role, remove, last admin) and agents."""

import re

import pytest
from django.core import mail
from django.test import Client

from memadmin.memory.models import AuditEvent
from tests.concurrency import race
from tests.support.dashboard import login


def events_of(*actions):
    return [(e.action, e.details["member"]) for e in AuditEvent.objects.filter(action__in=actions)]


def test_members_add_change_remove_and_last_admin(client, world):
    from tenants.models import Membership
    from tests.factories import UserFactory

    login(client, world.acme_admin)
    newcomer = UserFactory(username="newcomer", email="new@example.com")
    # Adding goes through an invitation the person accepts (tests/security/test_invitations.py).
    assert client.post("/t/acme/members/add/", {"email": "new@example.com", "role": "support"}).status_code == 302
    assert not Membership.objects.filter(user=newcomer, tenant=world.acme).exists()
    accept_path = re.search(r"http://testserver(\S+)", mail.outbox[-1].body).group(1)
    login(client, newcomer)
    assert client.post(accept_path).status_code == 302
    login(client, world.acme_admin)
    member = Membership.objects.get(user=newcomer, tenant=world.acme)
    assert member.role == "support"
    assert client.post("/t/acme/members/add/", {"email": "ghost", "role": "viewer"}).status_code == 400
    # A role change is confirmed first, on a page that says what the new role gains (from the one table).
    question = client.post(f"/t/acme/members/{member.pk}/role/", {"role": "admin"})
    html = question.content.decode()
    assert question.status_code == 200 and "Make newcomer admin?" in html and "manage members" in html
    assert 'name="confirm" value="yes"' in html and "<html" in html
    member.refresh_from_db()
    assert member.role == "support"
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "admin", "confirm": "yes"}).status_code == 302
    member.refresh_from_db()
    assert member.role == "admin"
    assert client.post(f"/t/acme/members/{member.pk}/role/", {"role": "owner"}).status_code == 400
    demote = client.post(f"/t/acme/members/{member.pk}/role/", {"role": "viewer"}).content.decode()
    assert "no longer be able to" in demote and "manage members" in demote
    assert "Remove newcomer from Acme?" in client.post(f"/t/acme/members/{member.pk}/remove/").content.decode()
    assert Membership.objects.filter(pk=member.pk).exists()  # asked, not done
    assert client.post(f"/t/acme/members/{member.pk}/remove/", {"confirm": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert set(events_of("member.role", "member.remove")) == {
        ("member.role", "newcomer"),
        ("member.remove", "newcomer"),
    }
    # The last admin cannot demote or remove themselves: not offered, said before the question, refused after it.
    me = world.acme_admin
    page = client.get("/t/acme/members/").content.decode()
    assert 'data-testid="last-admin"' in page and f"/t/acme/members/{me.pk}/remove/" not in page
    assert f"/t/acme/members/{me.pk}/role/" not in page
    for data in ({"role": "viewer"}, {"role": "viewer", "confirm": "yes"}):
        assert client.post(f"/t/acme/members/{me.pk}/role/", data).status_code == 409
    for data in ({}, {"confirm": "yes"}):
        assert client.post(f"/t/acme/members/{me.pk}/remove/", data).status_code == 409
    me.refresh_from_db()
    assert me.role == "admin"
    # Another tenant's membership id is not found.
    assert client.post(f"/t/acme/members/{world.globex_viewer.pk}/remove/").status_code == 404


def test_members_page_lists_agents_with_counts(client, world, memories):
    login(client, world.acme_admin)
    html = client.get("/t/acme/members/").content.decode()
    assert "acme-support" in html and "concierge" in html and "coach" in html and "butler" not in html


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoted_at_once_leave_one_admin(world):
    """The last-admin check reads other rows: without a lock, on PostgreSQL two demotions running side by side
    each saw the other admin still there, and the tenant was left with none."""
    from tenants.models import Membership

    Membership.objects.filter(pk=world.acme_support.pk).update(role="admin")
    me, other = world.acme_admin, world.acme_support
    client_a, client_b = login(Client(), me), login(Client(), me)

    def demote(client, member):
        data = {"role": "viewer", "confirm": "yes"}
        return lambda: client.post(f"/t/acme/members/{member.pk}/role/", data).status_code

    outcome = race(demote(client_a, other), demote(client_b, me))
    assert (outcome.first, outcome.second) == (302, 409) and not outcome.second_finished_while_first_open
    assert list(Membership.objects.filter(tenant=world.acme, role="admin").values_list("pk", flat=True)) == [me.pk]


@pytest.mark.django_db(transaction=True)
def test_removing_the_two_admins_at_once_leaves_one(world):
    from tenants.models import Membership

    Membership.objects.filter(pk=world.acme_support.pk).update(role="admin")
    me, other = world.acme_admin, world.acme_support
    client_a, client_b = login(Client(), me), login(Client(), other)

    def remove(client, member):
        return lambda: client.post(f"/t/acme/members/{member.pk}/remove/", {"confirm": "yes"}).status_code

    outcome = race(remove(client_a, other), remove(client_b, me))
    # The second request ran as a member who no longer exists by the time it got the lock: refused either way.
    assert outcome.first == 302 and outcome.second in (403, 404, 409)
    assert not outcome.second_finished_while_first_open
    assert Membership.objects.filter(tenant=world.acme, role="admin").count() == 1
