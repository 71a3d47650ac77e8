"""tenants/views/request_log.py: the API request log page, its filters, its keyset pages and its chart."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.utils import timezone

from tenants.models import TenantAPIKey
from tenants.request_log.forms import RequestFilterForm, cursor_of
from tenants.request_log.models import APIRequest
from tests.support.dashboard import HTMX, login


def _key(tenant, name, apps=()):
    row, key = TenantAPIKey.objects.create_key(name=name, tenant=tenant)
    row.apps.set(apps)
    return row, Client(headers={"Authorization": f"Token {key}"})


def _rows(html: str) -> int:
    return html.count('data-testid="request-row"')


def _count(html: str, testid: str) -> int:
    return int(re.search(rf'data-testid="{testid}">(\d+)<', html).group(1))


def test_an_admin_sees_each_keys_requests_with_the_chart_counting_the_same(client, world):
    crm, crm_api = _key(world.acme, "crm")
    bot, bot_api = _key(world.acme, "bot", apps=[world.acme_sports])
    assert crm_api.get("/v1/entities/").status_code == 200
    assert (
        crm_api.post("/v3/memories/add/", {"messages": "x", "app_id": "bad app"}, "application/json").status_code == 400
    )
    assert bot_api.get("/v1/entities/").status_code == 200
    _, globex_api = _key(world.globex, "globex-crm")
    assert globex_api.get("/v1/entities/").status_code == 200

    login(client, world.acme_admin)
    page = client.get("/t/acme/requests/")
    html = page.content.decode()
    assert page.status_code == 200 and _rows(html) == 3 and "globex-crm" not in html
    assert _count(html, "request-count") == 3 and _count(html, "error-count") == 1
    assert _count(html, "chart-requests") == 3 and _count(html, "chart-errors") == 1

    mine = client.get("/t/acme/requests/", {"key": crm.prefix}).content.decode()
    assert _rows(mine) == 2 and "/v3/memories/add/" in mine and ">bot<" not in mine
    assert _count(mine, "request-count") == 2 and _count(mine, "error-count") == 1
    errors = client.get("/t/acme/requests/", {"key": crm.prefix, "status": "4xx"}, **HTMX).content.decode()
    assert _rows(errors) == 1 and "<html" not in errors and 'badge-bad">400<' in errors
    assert _rows(client.get("/t/acme/requests/", {"http_method": "POST"}).content.decode()) == 1
    assert _rows(client.get("/t/acme/requests/", {"status": "2xx", "http_method": "GET"}).content.decode()) == 2
    in_app = client.get("/t/acme/requests/", {"app": "sports_portal"}).content.decode()
    assert _rows(in_app) == 1 and ">bot<" in in_app
    today = timezone.localdate().isoformat()
    assert _rows(client.get("/t/acme/requests/", {"date_from": today, "date_to": today}).content.decode()) == 3


def test_the_keys_page_and_the_app_page_link_to_the_log(client, world, memories):
    crm, _ = _key(world.acme, "crm")
    login(client, world.acme_admin)
    keys = client.get("/t/acme/keys/").content.decode()
    assert f'href="/t/acme/requests/?key={crm.prefix}"' in keys
    app = client.get("/t/acme/apps/concierge_app/").content.decode()
    assert 'href="/t/acme/requests/?app=concierge_app"' in app


def test_older_pages_follow_by_keyset_each_row_once(client, world):
    crm, _ = _key(world.acme, "crm")
    now = timezone.now()
    same_second = now - timedelta(minutes=5)
    APIRequest.objects.bulk_create(
        APIRequest(
            tenant=world.acme,
            key=crm,
            key_prefix=crm.prefix,
            key_name=crm.name,
            method="GET",
            path=f"/v1/memories/m{i}/",
            status=200,
            latency_ms=1.0,
            created_at=same_second if i % 3 == 0 else now - timedelta(seconds=i),
        )
        for i in range(120)
    )
    login(client, world.acme_admin)
    seen, url, pages = [], "/t/acme/requests/", 0
    while url:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, html[:300]
        seen += re.findall(r"/v1/memories/(m\d+)/", html)
        assert _count(html, "request-count") == 120  # the total of the filters, on every page
        older = re.search(r'data-testid="older" href="([^"]+)"', html)
        url = "/t/acme/requests/" + older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120


def test_bad_filters_are_a_400_with_the_reason_and_other_tenants_ids_a_404(client, world):
    _, globex_api = _key(world.globex, "globex-crm")
    globex_key = TenantAPIKey.objects.get(name="globex-crm")
    login(client, world.acme_admin)
    old = (timezone.localdate() - timedelta(days=40)).isoformat()
    for query, reason in [
        ({"date_from": old}, "keeps the last 30 days"),
        ({"status": "6xx"}, "Status"),
        ({"http_method": "TRACE"}, "Method"),
        ({"after": "yesterday"}, "Not a position"),
        ({"date_from": "2026-13-45"}, "From"),
        ({"key": "k" * 17}, "Key"),
    ]:
        response = client.get("/t/acme/requests/", query)
        assert response.status_code == 400 and reason in response.content.decode(), query
    assert client.get("/t/acme/requests/", {"key": globex_key.prefix}).status_code == 404
    assert client.get("/t/acme/requests/", {"app": "other_app"}).status_code == 404
    assert client.get("/t/acme/requests/", {"app": "concierge_app"}).status_code == 200


def test_support_and_viewers_get_403_and_outsiders_404(client, world):
    for membership in (world.acme_support, world.acme_viewer):
        login(client, membership)
        assert client.get("/t/acme/requests/").status_code == 403
        assert "/t/acme/requests/" not in client.get("/t/acme/apps/concierge_app/").content.decode()
    login(client, world.globex_admin)
    assert client.get("/t/acme/requests/").status_code == 404
    login(client, world.acme_admin)
    assert 'href="/t/acme/requests/"' in client.get("/t/acme/keys/").content.decode()  # every key's requests


def test_a_cursor_names_its_rows_exact_microsecond():
    """The cursor reads back as the row's exact time: a microsecond off would skip the rows that share it."""
    base = datetime(2026, 12, 7, 21, 56, 47, tzinfo=UTC)
    for micros in (0, 1, 123456, 999999, 562500, 700001):
        row = APIRequest(created_at=base + timedelta(microseconds=micros), id=uuid.uuid4())
        form = RequestFilterForm({"after": cursor_of(row)})
        assert form.is_valid(), form.errors
        assert form.cleaned_data["after"] == (row.created_at, row.id)
