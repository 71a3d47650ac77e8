"""People join a tenant only by accepting an invitation; the admin's side is no account oracle."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from memadmin.memory.models import AuditEvent
from tenants.links import token_digest
from tenants.models import Invitation, Membership
from tests.factories import MembershipFactory, UserFactory, two_tenant_world


@pytest.fixture
def world(db):
    w = two_tenant_world()
    w.existing = UserFactory(username="carol", email="carol@example.com")
    return w


@pytest.fixture
def admin(client, world):
    client.force_login(world.acme_admin.user)
    return client


def invite(client, email, role="support"):
    return client.post("/t/acme/members/add/", {"email": email, "role": role})


def link_in(message) -> str:
    return re.search(r"http://testserver(/invitations/[^/\s]+/)", message.body).group(1)


def test_invite_accept_with_a_new_account(admin, client, world):
    response = invite(admin, "dave@example.com")
    assert response.status_code == 302
    assert not Membership.objects.filter(tenant=world.acme, user__email="dave@example.com").exists()
    [message] = mail.outbox
    assert message.to == ["dave@example.com"] and "Acme" in message.subject
    url = link_in(message)
    invitation = Invitation.objects.get()
    assert url.rstrip("/").rsplit("/", 1)[-1] not in invitation.token_hash  # only a digest is stored
    assert AuditEvent.objects.filter(action="invitation.create", tenant=world.acme).exists()

    client.logout()
    page = client.get(url)
    assert page.status_code == 200 and "Join Acme" in page.content.decode()
    weak = client.post(url, {"username": "dave", "password1": "123", "password2": "123"})
    assert weak.status_code == 400 and not Membership.objects.filter(user__username="dave").exists()
    good = "a-long-Passphrase-9"
    joined = client.post(url, {"username": "dave", "password1": good, "password2": good})
    assert joined.status_code == 302 and joined["Location"] == "/t/acme/"
    member = Membership.objects.get(tenant=world.acme, user__username="dave")
    assert member.role == "support" and member.user.email == "dave@example.com"
    assert client.get("/t/acme/").status_code == 200  # signed in as dave
    invitation.refresh_from_db()
    assert invitation.accepted_by == member.user and invitation.accepted_at is not None


def test_an_existing_account_signs_in_then_accepts(admin, client, world):
    invite(admin, "CAROL@example.com", role="viewer")
    url = link_in(mail.outbox[0])
    client.logout()
    # Not signed in: creating a second account for that address is refused, signing in is offered.
    page = client.get(url).content.decode()
    assert "/login/?next=" in page
    refused = client.post(
        url, {"username": "carol2", "password1": "a-long-Passphrase-9", "password2": "a-long-Passphrase-9"}
    )
    assert refused.status_code == 400 and "sign in" in refused.content.decode()
    assert not Membership.objects.filter(tenant=world.acme, user=world.existing).exists()
    client.force_login(world.existing)
    assert "Accept and join" in client.get(url).content.decode()
    assert not Membership.objects.filter(tenant=world.acme, user=world.existing).exists()  # GET changes nothing
    assert client.post(url).status_code == 302
    assert Membership.objects.get(tenant=world.acme, user=world.existing).role == "viewer"


def test_no_account_oracle(admin, world, monkeypatch):
    """Existing account, unknown address: the same status, page, message and e-mail shape."""
    # Both answers at the same instant: the page shows when each invitation was sent and until when it is
    # valid, to the second, and on a loaded machine the two answers fell in different seconds.
    instant = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: instant)
    answers, bodies = [], []
    for email in ("carol@example.com", "nobody-here@example.com"):
        Invitation.objects.all().delete()  # each answer from the same starting point
        response = invite(admin, email)
        page = admin.get(response["Location"])
        answers.append((response.status_code, response["Location"]))
        bodies.append(page.content.decode().replace(email, "EMAIL"))
    assert answers[0] == answers[1]
    assert _without_invitation_rows(bodies[0]) == _without_invitation_rows(bodies[1])
    first, second = mail.outbox
    assert first.subject == second.subject
    assert link_in(first) != link_in(second)
    assert _without_times(re.sub(r"/invitations/\S+", "", first.body)) == _without_times(
        re.sub(r"/invitations/\S+", "", second.body)
    )


def _without_times(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d", "TIME", text)


def _without_invitation_rows(html: str) -> str:
    # csrf tokens differ per render, row ids count up, and the two invitations' times may be a second apart;
    # the rest must not differ.
    html = re.sub(r"/invitations/\d+/", "/invitations/N/", html)
    html = _without_times(html)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"|"X-CSRFToken": "[^"]+"', "", html)


def test_adding_an_existing_account_by_username_is_gone(admin, world):
    response = admin.post("/t/acme/members/add/", {"username": "carol", "role": "admin"})
    assert response.status_code == 400
    assert not Membership.objects.filter(tenant=world.acme, user=world.existing).exists()
    assert mail.outbox == []


def test_bad_input_is_a_400(admin, world):
    for data in ({"email": "not-an-address", "role": "viewer"}, {"email": "x@example.com", "role": "owner"}, {}):
        assert admin.post("/t/acme/members/add/", data).status_code == 400, data
    assert mail.outbox == [] and not Invitation.objects.exists()


def test_expired_cancelled_reused_and_unknown_links_get_a_clear_page(admin, client, world):
    invite(admin, "erin@example.com")
    url = link_in(mail.outbox[0])
    invitation = Invitation.objects.get()

    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.logout()
    for response in (
        client.get(url),
        client.post(url, {"username": "erin", "password1": "a-long-Passphrase-9", "password2": "a-long-Passphrase-9"}),
    ):
        assert response.status_code == 410 and "expired" in response.content.decode()

    client.force_login(world.acme_admin.user)
    assert client.post(f"/t/acme/invitations/{invitation.pk}/resend/").status_code == 302
    fresh = link_in(mail.outbox[1])
    client.logout()
    assert client.get(url).status_code == 404  # the resend replaced the old link: unknown now
    assert client.get(fresh).status_code == 200

    client.force_login(world.acme_admin.user)
    assert client.post(f"/t/acme/invitations/{invitation.pk}/cancel/").status_code == 302
    client.logout()
    cancelled = client.get(fresh)
    assert cancelled.status_code == 410 and "withdrawn" in cancelled.content.decode()

    client.force_login(world.acme_admin.user)
    invite(client, "frank@example.com")
    once = link_in(mail.outbox[-1])
    frank = UserFactory(username="frank", email="frank@example.com")
    client.force_login(frank)
    assert client.post(once).status_code == 302
    again = client.post(once)
    assert again.status_code == 410 and "already been used" in again.content.decode()

    for unknown in ("/invitations/not-a-token/", "/invitations/" + "x" * 5000 + "/"):
        response = client.get(unknown)
        assert response.status_code == 404 and "not valid" in response.content.decode()


def test_resend_and_cancel_are_admin_only_post_only_and_tenant_scoped(client, world):
    client.force_login(world.acme_admin.user)
    invite(client, "gina@example.com")
    invitation = Invitation.objects.get()
    assert client.get(f"/t/acme/invitations/{invitation.pk}/cancel/").status_code == 405
    client.force_login(world.acme_support.user)
    assert client.post(f"/t/acme/invitations/{invitation.pk}/cancel/").status_code == 403
    client.force_login(world.globex_admin.user)
    assert client.post(f"/t/globex/invitations/{invitation.pk}/cancel/").status_code == 404
    assert client.post(f"/t/acme/invitations/{invitation.pk}/resend/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.cancelled_at is None


def test_the_members_page_lists_open_invitations(admin, world):
    invite(admin, "hana@example.com", role="admin")
    html = admin.get("/t/acme/members/").content.decode()
    assert "hana@example.com" in html and "Resend" in html and "Cancel" in html


def test_last_admin_protection_still_holds(admin, world):
    me = world.acme_admin
    assert admin.post(f"/t/acme/members/{me.pk}/role/", {"role": "viewer"}).status_code == 409
    assert admin.post(f"/t/acme/members/{me.pk}/remove/").status_code == 409
    MembershipFactory(tenant=world.acme, role="admin", user=UserFactory(username="second-admin"))
    assert admin.post(f"/t/acme/members/{me.pk}/role/", {"role": "viewer"}).status_code == 200  # the question
    assert admin.post(f"/t/acme/members/{me.pk}/role/", {"role": "viewer", "confirm": "yes"}).status_code == 302


def test_a_mail_server_that_is_down_is_a_clear_503_not_a_500(admin, world, settings):
    from memadmin.memory.embedded import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.EMAIL_USE_TLS = False
    response = invite(admin, "ivan@example.com")
    assert response.status_code == 503
    html = response.content.decode()
    assert "could not be sent" in html and "ivan@example.com" in html and "Resend" in html
    invitation = Invitation.objects.get(email="ivan@example.com")  # kept, to resend later
    resent = admin.post(f"/t/acme/invitations/{invitation.pk}/resend/")
    assert resent.status_code == 503 and "could not be sent" in resent.content.decode()


def test_platform_admins_see_invitations_read_only(client, world, admin_user):
    client.force_login(world.acme_admin.user)
    invite(client, "judy@example.com")
    client.force_login(admin_user)
    listing = client.get("/admin/tenants/invitation/")
    assert listing.status_code == 200 and "judy@example.com" in listing.content.decode()
    assert client.get("/admin/tenants/invitation/add/").status_code == 403


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_a_signed_in_account_with_another_address_cannot_accept(admin, client, world, role):
    """The link is bound to the invited address: whoever else holds it (a forwarded e-mail, a shared screen)
    is told so and offered to sign out, and the POST joins nobody."""
    invite(admin, "dave@example.com", role=role)
    url = link_in(mail.outbox[0])
    for intruder in (
        UserFactory(username="mallory", email="mallory@example.com"),
        UserFactory(username="no-address", email=""),
        world.globex_admin.user,
    ):
        client.force_login(intruder)
        page = client.get(url)
        html = page.content.decode()
        assert page.status_code == 403, intruder
        assert "invitation is for another address" in html and "Accept and join" not in html
        assert 'action="/logout/"' in html and "Sign out" in html
        refused = client.post(url)
        assert refused.status_code == 403 and "another address" in refused.content.decode()
        assert not Membership.objects.filter(tenant=world.acme, user=intruder).exists()
    signed_out = client.post("/logout/", {"next": url})
    assert signed_out.status_code == 302 and signed_out["Location"] == url  # back to the link, signed out
    assert "Create account and join" in client.get(url).content.decode()
    invitation = Invitation.objects.get()
    assert invitation.is_open and invitation.accepted_by is None
    # The invited person can still use it, whatever the case or spaces of the address on their account.
    dave = UserFactory(username="dave", email="  Dave@Example.COM ")
    client.force_login(dave)
    assert client.post(url).status_code == 302
    assert Membership.objects.get(tenant=world.acme, user=dave).role == role


def test_a_new_account_gets_the_invited_address_whatever_the_form_says(admin, client, world):
    invite(admin, "erin@example.com", role="admin")
    url = link_in(mail.outbox[0])
    client.logout()
    page = client.get(url).content.decode()
    assert 'name="email"' not in page and 'value="erin@example.com" readonly disabled' in page
    good = "a-long-Passphrase-9"
    joined = client.post(
        url, {"username": "erin", "email": "mallory@example.com", "password1": good, "password2": good}
    )
    assert joined.status_code == 302
    member = Membership.objects.get(tenant=world.acme, user__username="erin")
    assert member.user.email == "erin@example.com" and member.role == "admin"


def test_accepting_is_audited_with_the_address_and_role(admin, client, world):
    invite(admin, "Frank@Example.com", role="support")
    url = link_in(mail.outbox[0])
    frank = UserFactory(username="frank", email="frank@example.com")
    client.force_login(frank)
    assert client.post(url).status_code == 302
    event = AuditEvent.objects.get(tenant=world.acme, action="invitation.accept")
    assert event.actor == "frank" and event.role == "support"
    assert event.details["email"] == "Frank@Example.com" and event.details["role"] == "support"


def test_every_membership_change_names_the_persons_address(admin, world):
    """Who was invited, resent, withdrawn, changed or removed: the log says whose address, not a row number."""
    invite(admin, "kim@example.com", role="admin")
    invitation = Invitation.objects.get()
    assert admin.post(f"/t/acme/invitations/{invitation.pk}/resend/").status_code == 302
    assert admin.post(f"/t/acme/invitations/{invitation.pk}/cancel/").status_code == 302
    member = world.acme_support
    assert admin.post(f"/t/acme/members/{member.pk}/role/", {"role": "viewer", "confirm": "yes"}).status_code == 302
    assert admin.post(f"/t/acme/members/{member.pk}/remove/", {"confirm": "yes"}).status_code == 302
    events = {e.action: e for e in AuditEvent.objects.filter(tenant=world.acme, actor="acme-admin")}
    for action in ("invitation.create", "invitation.resend", "invitation.cancel"):
        assert events[action].details["email"] == "kim@example.com", action
        assert events[action].details["role"] == "admin", action
    for action in ("member.role", "member.remove"):
        assert events[action].details["email"] == "acme-support@example.com", action
    assert events["member.role"].details["role"] == "viewer" and events["member.remove"].details["role"] == "viewer"
    log = admin.get("/t/acme/audit/").content.decode()
    assert "Invited kim@example.com as admin" in log and "Withdrew the invitation of kim@example.com" in log


HANDED_OVER = re.compile(r'data-testid="invitation-link"[^>]*>http://testserver(/invitations/[^/\s<"]+/)<')


def test_the_default_mail_backend_prints_no_invitation_link(admin, client, world, settings, capsys):
    """Without a mail server the message goes to the server's output, which logs keep: the link (membership,
    as admin if so invited) is redacted there, and the inviting admin is shown it once, to hand it over."""
    settings.EMAIL_BACKEND = "memadmin.mail.ConsoleBackend"
    response = invite(admin, "lee@example.com", role="admin")
    printed = capsys.readouterr().out
    assert "lee@example.com" in printed and "/invitations/[redacted]" in printed
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    url = HANDED_OVER.search(html).group(1)
    token = url.strip("/").rsplit("/", 1)[-1]
    assert len(token) > 30 and token not in printed
    assert Invitation.objects.get().token_hash == token_digest(token)
    assert token not in admin.get("/t/acme/members/").content.decode()  # shown once, not kept on the page

    invitation = Invitation.objects.get()
    resent = admin.post(f"/t/acme/invitations/{invitation.pk}/resend/")
    printed = capsys.readouterr().out
    fresh = HANDED_OVER.search(resent.content.decode()).group(1)
    assert fresh != url and fresh.strip("/").rsplit("/", 1)[-1] not in printed
    assert "no-store" in resent["Cache-Control"]

    client.logout()
    assert client.get(url).status_code == 404  # replaced by the resend
    good = "a-long-Passphrase-9"
    assert client.post(fresh, {"username": "lee", "password1": good, "password2": good}).status_code == 302
    assert Membership.objects.get(tenant=world.acme, user__email="lee@example.com").role == "admin"


def test_a_real_mail_backend_shows_no_link_to_the_admin(admin, world):
    response = invite(admin, "mo@example.com")  # the tests' locmem backend stands for SMTP: the mail is sent
    assert response.status_code == 302
    page = admin.get(response["Location"]).content.decode()
    assert "invitation-link" not in page and "/invitations/" + link_in(mail.outbox[0]).split("/")[2] not in page


def test_the_apis_invitation_without_a_mail_server_answers_the_link_and_prints_none(admin, settings, capsys):
    settings.EMAIL_BACKEND = "memadmin.mail.ConsoleBackend"
    url = "/api/v1/orgs/organizations/acme/projects/acme/members/"
    response = admin.post(url, {"email": "nia@example.com", "role": "READER"}, content_type="application/json")
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    link = response.json()["invite_url"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert Invitation.objects.get(email="nia@example.com").token_hash == token_digest(token)
    printed = capsys.readouterr().out
    assert "nia@example.com" in printed and token not in printed


def test_the_apis_invitation_with_a_mail_server_answers_no_link(admin):
    url = "/api/v1/orgs/organizations/acme/projects/acme/members/"
    response = admin.post(url, {"email": "nia@example.com", "role": "READER"}, content_type="application/json")
    assert response.status_code == 201 and "invite_url" not in response.json() and len(mail.outbox) == 1
