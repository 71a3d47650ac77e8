"""Pausing and resuming an app's API writes from its page (tenants/views/apps.py, tenants/pausing.py): the card,
HTMX in place with the banner out of band, the banner on the overview and the app page, audit, who may."""

import re

from memadmin.memory.models import AuditEvent
from tenants.models import App
from tests.support.dashboard import HTMX, login

PAGE = "/t/acme/apps/sports_portal/"
PAUSE, RESUME = f"{PAGE}pause/", f"{PAGE}resume/"
BANNER = 'data-testid="paused-banner"'


def _banner_text(html: str) -> str:
    banner = re.search(r'data-testid="paused-banner">(.*?)</div>', html, re.S).group(1)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", banner)).strip()


def test_an_admin_pauses_and_resumes_with_htmx(client, world, memories):
    login(client, world.acme_admin)
    page = client.get(PAGE).content.decode()
    assert "Pause API writes" in page and BANNER not in page and 'id="paused-banner"' in page

    response = client.post(PAUSE, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Resume API writes" in html and 'id="paused-banner" hx-swap-oob="outerHTML"' in html
    assert "sports_portal is paused since" in _banner_text(html)
    assert "sports_portal is paused: its API writes answer 423 until you resume it." in html  # the toast
    app = App.objects.get(tenant=world.acme, app_id="sports_portal")
    assert app.is_paused and app.paused_by == AuditEvent.objects.get(action="app.pause").actor

    reloaded = client.get(PAGE).content.decode()  # reload-safe: the page reads the app's row
    assert "Resume API writes" in reloaded and BANNER in reloaded

    response = client.post(RESUME, **HTMX)
    html = response.content.decode()
    assert "Pause API writes" in html and BANNER not in html and 'id="paused-banner" hx-swap-oob' in html
    assert not App.objects.get(pk=app.pk).is_paused
    assert BANNER not in client.get(PAGE).content.decode()
    events = list(AuditEvent.objects.filter(action__in=("app.pause", "app.resume")).order_by("created_at"))
    assert [(e.action, e.app_id) for e in events] == [("app.pause", "sports_portal"), ("app.resume", "sports_portal")]


def test_without_javascript_pause_redirects_and_both_pages_show_the_banner(client, world, memories):
    login(client, world.acme_admin)
    response = client.post(PAUSE)
    assert response.status_code == 302 and response["Location"] == PAGE
    app = App.objects.get(tenant=world.acme, app_id="sports_portal")
    for path in (PAGE, "/t/acme/"):
        text = _banner_text(client.get(path).content.decode())
        assert text.startswith("sports_portal is paused since ")
        assert f"by {app.paused_by}: API writes answer 423." in text
    login(client, world.acme_viewer)  # everyone reading the overview learns it; only admins get the link
    viewer = client.get("/t/acme/").content.decode()
    assert BANNER in viewer and "Resume it on the app" not in viewer


def test_pausing_twice_keeps_the_first_pause(client, world, memories):
    login(client, world.acme_admin)
    client.post(PAUSE)
    first = App.objects.get(tenant=world.acme, app_id="sports_portal").paused_at
    client.post(PAUSE)
    assert App.objects.get(tenant=world.acme, app_id="sports_portal").paused_at == first
    assert AuditEvent.objects.filter(action="app.pause").count() == 1
    assert client.post(RESUME).status_code == 302 and client.post(RESUME).status_code == 302
    assert AuditEvent.objects.filter(action="app.resume").count() == 1


def test_support_and_viewers_see_no_pause_and_get_403(client, world, memories):
    for member in (world.acme_support, world.acme_viewer):
        login(client, member)
        assert "Pause API writes" not in client.get(PAGE).content.decode()
        assert client.post(PAUSE).status_code == 403 and client.post(RESUME).status_code == 403
    assert not App.objects.get(tenant=world.acme, app_id="sports_portal").is_paused


def test_other_tenants_apps_are_404_and_get_is_405(client, world, memories):
    login(client, world.acme_admin)
    assert client.post("/t/acme/apps/no_such_app/pause/").status_code == 404
    assert client.post("/t/globex/apps/concierge_app/pause/").status_code == 404
    assert client.get(PAUSE).status_code == 405
    assert not App.objects.filter(paused_at__isnull=False).exists()


def test_an_offboarded_app_cannot_be_paused(client, world, memories):
    App.objects.filter(tenant=world.acme, app_id="sports_portal").update(status=App.Status.OFFBOARDED)
    login(client, world.acme_admin)
    response = client.post(PAUSE)
    assert response.status_code == 409 and "was offboarded" in response.content.decode()
