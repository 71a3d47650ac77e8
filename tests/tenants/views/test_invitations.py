"""tenants/views/invitations.py: the accept page an invitation e-mail links to, for a signed-in account or a new
one. Inviting (tenants/views/members.py) and the hostile cases are tests/security/test_invitations.py."""

import pytest

from tenants.invitations import invitation_create
from tenants.models import Invitation, Membership
from tenants.scoping import scope_for_membership
from tests.concurrency import race
from tests.factories import UserFactory
from tests.support.dashboard import login

PASSPHRASE = "a-long-Passphrase-9"


@pytest.fixture
def invite(world):
    """invite(email, role): acme's admin invites someone; returns the accept page's path."""

    def _invite(email, role="support"):
        tokens = []

        def accept_url(token):
            tokens.append(token)
            return f"http://testserver/invitations/{token}/"

        invitation_create(
            scope=scope_for_membership(world.acme_admin),
            tenant=world.acme,
            email=email,
            role=role,
            invited_by=world.acme_admin.user,
            accept_url=accept_url,
        )
        return f"/invitations/{tokens[0]}/"

    return _invite


def test_the_accept_page_renders_for_someone_not_signed_in(client, invite):
    url = invite("dave@example.com", role="viewer")
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and "Join Acme" in html
    assert "acme-admin invited you as <strong>viewer</strong>" in html and "dave@example.com" in html
    assert 'name="username"' in html and "Create account and join" in html
    assert f'href="/login/?next={url}"' in html  # an existing account signs in first
    assert not Membership.objects.filter(user__email="dave@example.com").exists()


def test_a_new_account_joins_with_the_invited_role(client, world, invite):
    url = invite("dave@example.com")
    joined = client.post(url, {"username": "dave", "password1": PASSPHRASE, "password2": PASSPHRASE})
    assert joined.status_code == 302 and joined["Location"] == "/t/acme/"
    member = Membership.objects.get(tenant=world.acme, user__username="dave")
    assert member.role == "support" and member.user.email == "dave@example.com"
    assert client.get("/t/acme/").status_code == 200  # signed in as dave
    assert Invitation.objects.get().accepted_by == member.user


def test_a_bad_new_account_is_a_400_and_joins_nobody(client, world, invite):
    url = invite("dave@example.com")
    response = client.post(url, {"username": "dave", "password1": PASSPHRASE, "password2": "something-else-9"})
    assert response.status_code == 400 and "Join Acme" in response.content.decode()
    assert not Membership.objects.filter(user__username="dave").exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_signed_in_account_accepts_with_a_post(client, world, invite):
    url = invite("erin@example.com", role="viewer")
    erin = UserFactory(username="erin", email="erin@example.com")
    login(client, erin)
    page = client.get(url).content.decode()
    assert "You are signed in as <strong>erin</strong>" in page and "Accept and join Acme" in page
    assert not Membership.objects.filter(user=erin).exists()  # the GET changed nothing
    joined = client.post(url)
    assert joined.status_code == 302 and joined["Location"] == "/t/acme/"
    assert Membership.objects.get(tenant=world.acme, user=erin).role == "viewer"


def test_a_bad_token_is_a_404_with_a_clear_page(client, world):
    response = client.get("/invitations/not-a-token/")
    html = response.content.decode()
    assert response.status_code == 404 and "This invitation cannot be used" in html and "not valid" in html
    assert client.post("/invitations/not-a-token/", {"username": "x"}).status_code == 404


def test_only_get_head_and_post(client, invite):
    url = invite("dave@example.com")
    assert client.head(url).status_code == 200
    assert client.put(url).status_code == 405 and client.delete(url).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_inviting_one_address_twice_at_once_leaves_one_open_invitation(world):
    """The renewal looks for an open invitation to lock; with none yet there is nothing to lock, so on
    PostgreSQL two invitations at once both created one (two live links, one of them never withdrawn)."""

    def invite(email):
        def accept_url(token):
            return f"http://testserver/invitations/{token}/"

        return lambda: (
            invitation_create(
                scope=scope_for_membership(world.acme_admin),
                tenant=world.acme,
                email=email,
                role="viewer",
                invited_by=world.acme_admin.user,
                accept_url=accept_url,
            ).pk
        )

    outcome = race(invite("erin@example.com"), invite("Erin@Example.com"))
    assert outcome.first == outcome.second and not outcome.second_finished_while_first_open
    assert Invitation.objects.filter(tenant=world.acme, email__iexact="erin@example.com").count() == 1


def test_the_new_account_form_leads_and_its_errors_name_the_fields_as_labelled(client, invite):
    url = invite("dave@example.com")
    html = client.get(url).content.decode()
    assert '<button class="btn btn-primary btn-block" type="submit">Create account and join</button>' in html
    assert 'class="btn btn-block" data-testid="invitation-sign-in"' in html  # signing in is the other way
    response = client.post(url, {"username": "dave", "password1": PASSPHRASE, "password2": "something-else-9"})
    html = response.content.decode()
    assert "<strong>Password again:</strong>" in html and "Password confirmation" not in html
