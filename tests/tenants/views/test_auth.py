"""tenants/views/auth.py: sign in, the tenant picker, throttling, sign out."""

from django.conf import settings
from django.urls import reverse

from tests.support.dashboard import login


def test_login_and_tenant_picker(client, world):
    from tests.factories import MembershipFactory

    assert "Sign in" in client.get("/login/").content.decode()
    response = client.post("/login/", {"username": "acme-viewer", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get("/")["Location"] == "/t/acme/"  # one tenant: straight there
    MembershipFactory(user=world.acme_viewer.user, tenant=world.globex, role="viewer")
    picker = client.get("/").content.decode()
    assert "Acme" in picker and "Globex" in picker


def test_picker_shows_only_own_tenants(client, world):
    login(client, world.outsider)
    html = client.get("/").content.decode()
    assert "not a member of any tenant" in html and "Acme" not in html


def test_login_is_throttled(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT_PER_USER):
        client.post("/login/", {"username": "acme-viewer", "password": "wrong"})
    locked = client.post("/login/", {"username": "acme-viewer", "password": "correct-horse-battery"})
    assert locked.status_code in (403, 429)
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only(client, world):
    login(client, world.acme_viewer)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302


def test_a_superuser_in_no_tenant_lands_on_the_tenant_list_with_django_admin(client, world):
    from tests.factories import UserFactory

    platform = UserFactory(username="platform", is_superuser=True, is_staff=True)
    login(client, platform)
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="platform-tenants"' in html
    assert 'href="/admin/"' in html and f'href="/admin/tenants/tenant/{world.acme.pk}/change/"' in html
    assert "Acme" in html and "Globex" in html and "not a member of any tenant yet" not in html
    assert client.get("/admin/").status_code == 200  # the link leads somewhere
    # Being a superuser grants no tenant: the dashboards stay members-only.
    assert client.get("/t/acme/").status_code == 404
