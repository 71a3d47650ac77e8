"""The API request log page (/t/<tenant>/requests/) across tenants, roles and principals: only a tenant's own
admins read it, only its own rows appear, another tenant's key or app is "not found", and no filter value,
however hostile, is a 500 or widens what is shown."""

from django.test import Client
from django.urls import reverse

from tenants.request_log.models import APIRequest
from tests.support.hostile import api_client, hostile_id_values, principals


def _traffic(world):
    """A request from each key of each tenant, so both tenants' logs have rows."""
    for slug in ("acme", "globex"):
        keys = world.keys[slug]
        for key in (keys.full, keys.restricted):
            assert api_client(key).get("/v1/entities/").status_code == 200


def test_only_the_tenants_admins_read_its_log_and_only_its_rows(hostile_world):
    _traffic(hostile_world)
    assert APIRequest.objects.filter(tenant=hostile_world.globex).count() == 2
    globex = hostile_world.keys["globex"]
    for who in principals(hostile_world, hostile_world.acme):
        for slug in ("acme", "globex"):
            response = who.client.get(reverse("requests", args=[slug]))
            body = response.content.decode()
            if who.name == "acme:admin" and slug == "acme":
                assert response.status_code == 200 and body.count('data-testid="request-row"') == 2
            elif who.name in ("acme:support", "acme:viewer") and slug == "acme":
                assert response.status_code == 403, who.name
            elif who.kind == "staff":  # the other tenant's page, or an outsider: no such page
                assert response.status_code == 404, (who.name, slug)
            else:  # a key, an end user, nobody: not signed in to the dashboard
                assert response.status_code == 302 and response["Location"].startswith("/login/"), (who.name, slug)
            assert globex.full_row.prefix not in body and globex.restricted_row.prefix not in body


def test_another_tenants_key_or_app_is_not_found(hostile_world):
    _traffic(hostile_world)
    admin = Client()
    admin.force_login(hostile_world.acme_admin.user)
    url = reverse("requests", args=["acme"])
    globex = hostile_world.keys["globex"]
    for query in (
        {"key": globex.full_row.prefix},
        {"key": globex.restricted_row.prefix},
        {"app": "other_app"},
        {"key": globex.full_row.prefix, "status": "2xx"},
    ):
        response = admin.get(url, query)
        assert response.status_code == 404, query
        assert globex.full_row.prefix not in response.content.decode()
    own = admin.get(url, {"key": hostile_world.keys["acme"].restricted_row.prefix})
    assert own.status_code == 200 and own.content.decode().count('data-testid="request-row"') == 1


def test_hostile_filter_values_are_refused_never_a_500(hostile_world):
    _traffic(hostile_world)
    admin = Client()
    admin.force_login(hostile_world.acme_admin.user)
    url = reverse("requests", args=["acme"])
    globex_prefix = hostile_world.keys["globex"].full_row.prefix
    for value in [*hostile_id_values(), "0.00000000000000000000000000000000", "9" * 20 + "." + "f" * 32, "2xx"]:
        for field in ("key", "app", "status", "http_method", "date_from", "date_to", "after"):
            safe = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            response = admin.get(url, {field: safe})
            assert response.status_code in (200, 400, 404), (field, repr(value)[:40], response.status_code)
            assert globex_prefix not in response.content.decode()


def test_the_results_fragment_keeps_the_pages_gates(hostile_world, staff_client, client):
    _traffic(hostile_world)
    fragment = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
    url = reverse("requests", args=["acme"])
    assert client.get(url, **fragment).status_code == 302  # anonymous: to the login page
    assert staff_client("globex", "admin").get(url, **fragment).status_code == 404
    assert staff_client("acme", "support").get(url, **fragment).status_code == 403
    own = staff_client("acme", "admin").get(url, {"status": "2xx"}, **fragment)
    body = own.content.decode()
    assert own.status_code == 200 and "<html" not in body and body.count('data-testid="request-row"') == 2
    assert hostile_world.keys["globex"].full_row.prefix not in body
