"""Your-data links: they carry the issuer's apps and an opaque token kept out of logs."""

import base64
import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from memadmin.memory import selectors, services
from memadmin.memory.filters import filter_from_fields
from tenants.links import data_link_issue, data_link_verify
from tenants.models import App, DataLink, TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.factories import AppFactory, two_tenant_world


@pytest.fixture
def world(db):
    cache.clear()  # API throttle counters
    w = two_tenant_world()
    admin_scope = scope_for_membership(w.acme_admin)
    for app_id, text in (("concierge_app", "Alice prefers vegetarian food"), ("sports_portal", "Alice plays tennis")):
        services.memory_add(scope=admin_scope, app_id=app_id, messages=text, user_id="alice")
    row, w.concierge_key = TenantAPIKey.objects.create_key(name="concierge-only", tenant=w.acme)
    row.apps.set([w.acme_concierge])
    yield w
    cache.clear()


def issue_by_key(key, user_id="alice"):
    response = APIClient().post(
        "/api/v1/data-links/", {"user_id": user_id}, format="json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 201, response.content
    return response.json()["url"].removeprefix("http://testserver")


def texts(scope_or_items):
    return sorted(item["memory"] if isinstance(item, dict) else item.memory for item in scope_or_items)


def test_an_app_restricted_key_issues_a_link_restricted_to_its_apps(world, client):
    page = issue_by_key(world.concierge_key)
    link = DataLink.objects.get()
    assert list(link.apps.all()) == [world.acme_concierge]

    body = client.get(page).content.decode()
    assert "vegetarian" in body and "plays tennis" not in body

    exported = client.get(page + "export.json")
    assert exported.status_code == 200
    assert texts(__import__("json").loads(b"".join(exported.streaming_content))) == ["Alice prefers vegetarian food"]

    searched = client.get(page, {"q": "tennis sport", "weak": "1"}).content.decode()  # every match, weak ones too
    assert "vegetarian" in searched and "plays tennis" not in searched

    response = client.post(page + "delete-all/", {"confirm": "on"})
    assert response.status_code == 302
    staff = scope_for_membership(world.acme_admin)
    remaining = selectors.memory_list(scope=staff, filters=filter_from_fields(user_id="alice"))
    assert texts(remaining.items) == ["Alice plays tennis"]


def test_a_staff_link_carries_the_tenant_apps_at_issue_time(world, client):
    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    link = DataLink.objects.get()
    assert set(link.apps.all()) == {world.acme_concierge, world.acme_sports}
    # An app created afterwards is not reachable through the older link.
    later = AppFactory(tenant=world.acme, app_id="later_app")
    services.memory_add(
        scope=scope_for_membership(world.acme_admin),
        app_id="later_app",
        messages="Alice bought a kayak",
        user_id="alice",
    )
    body = client.get(page).content.decode()
    assert "plays tennis" in body and "vegetarian" in body and "kayak" not in body
    assert later not in link.apps.all()


def test_an_offboarded_app_leaves_the_link(world, client):
    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.OFFBOARDED)
    body = client.get(page).content.decode()
    assert "vegetarian" in body and "plays tennis" not in body


def test_the_token_is_opaque_and_stored_hashed(world):
    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    token = page.rstrip("/").rsplit("/", 1)[-1]
    link = DataLink.objects.get()
    padded = token + "=" * (-len(token) % 4)
    decoded = base64.urlsafe_b64decode(padded)
    for secret in (b"alice", str(link.pk).encode(), b'"t"', str(world.acme.pk).encode() + b","):
        assert secret not in decoded
    assert "alice" not in token and str(link.pk) not in token
    assert len(token) >= 40
    assert token not in link.token_hash and link.token_hash  # only a digest is kept
    assert data_link_verify(token).pk == link.pk


def test_tokens_of_the_old_signed_format_get_a_clear_page(world, client):
    from django.core import signing

    _link, _page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    link = DataLink.objects.get()
    old = signing.dumps(
        {"l": str(link.pk), "t": world.acme.pk, "u": "alice"}, salt="memadmin.your-data-link", compress=True
    )
    response = client.get(f"/your-data/{old}/")
    assert response.status_code == 403
    assert "not valid" in response.content.decode()


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def captured():
    """Collects what handlers of the request loggers would write (django.server does not propagate)."""
    capture = Capture()
    names = ("django.server", "django.request", "gunicorn.access")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.INFO)
    yield capture.lines
    for logger, level in zip(loggers, levels):
        logger.removeHandler(capture)
        logger.setLevel(level)


def test_the_token_never_reaches_the_request_logs(world, client, captured):
    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    token = page.rstrip("/").rsplit("/", 1)[-1]
    # What runserver (so `manage.py serve`) writes per request, and gunicorn's access log line.
    logging.getLogger("django.server").info('"%s" %s %s', f"GET {page}export.json HTTP/1.1", "200", "12")
    logging.getLogger("gunicorn.access").info("%(r)s %(s)s", {"r": f"GET {page} HTTP/1.1", "s": "200"})
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /invitations/{token}/ HTTP/1.1", "200", "9")
    client.get(page + "memories/concierge_app/nope/delete/")  # 405: Django's request log names the path
    client.get(f"/your-data/{token}/nowhere")  # 404: likewise
    logged = "\n".join(captured)
    assert logged.count("/your-data/") == 4 and "/invitations/[redacted]/" in logged, logged
    assert token not in logged


@pytest.fixture
def everything_logged():
    """What any handler anywhere would write: a handler on the root logger, every level."""
    capture = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture.lines
    root.removeHandler(capture)
    root.setLevel(level)


def test_a_failed_csrf_check_logs_no_token(world, everything_logged):
    """django.security.csrf names the path when it refuses a POST; its records propagate past the request
    loggers, so the token is taken out where records are made, not by a filter on some loggers."""
    from django.test import Client

    _link, page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    token = page.rstrip("/").rsplit("/", 1)[-1]
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(page + "delete-all/").status_code == 403
    assert browser.post(f"/invitations/{token}/").status_code == 403
    logged = "\n".join(everything_logged)
    assert "/your-data/[redacted]/delete-all/" in logged and "/invitations/[redacted]/" in logged, logged
    assert token not in logged
