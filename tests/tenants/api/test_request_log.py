"""The API request log's recording (tenants/request_log/recording.py): one row per request made with a key, with
its status, key, app and address, and nothing a request carried as text."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.jobs.sweep import jobs_sweep
from tenants.models import TenantAPIKey
from tenants.request_log.models import APIRequest
from tenants.request_log.recording import request_log_prune


def _fields(row: APIRequest) -> str:
    """Every stored value of a row, as one text to search for what must never be in it."""
    return " ".join(str(getattr(row, f.attname)) for f in APIRequest._meta.concrete_fields)


@pytest.mark.django_db(transaction=True)
def test_a_memory_client_request_is_logged_with_its_key_status_and_app(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    client.add([{"role": "user", "content": "I am vegetarian, remember that."}], user_id="u_alice", infer=False)
    client.get_all(filters={"user_id": "u_alice"})
    key = TenantAPIKey.objects.get(name="acme-server")
    rows = list(APIRequest.objects.for_tenant(live_world.acme).order_by("created_at"))
    adds = [r for r in rows if r.path == "/v3/memories/add/"]
    assert len(adds) == 1, [(r.method, r.path) for r in rows]
    add = adds[0]
    assert (add.method, add.status, add.key_id, add.key_prefix, add.key_name) == (
        "POST",
        200,
        key.pk,
        key.prefix,
        "acme-server",
    )
    assert add.app_id == "concierge_app"  # the default app the write went to
    assert add.client_ip == "127.0.0.1" and add.latency_ms > 0
    listed = [r for r in rows if r.path.startswith("/v3/memories/") and r.path != "/v3/memories/add/"]
    assert listed and listed[-1].status == 200 and listed[-1].method == "POST"
    for row in rows:
        text = _fields(row)
        assert live_world.acme_key not in text and "vegetarian" not in text and "u_alice" not in text
    assert not APIRequest.objects.for_tenant(live_world.globex).exists()


@pytest.mark.django_db
def test_an_error_request_is_logged_with_its_status(world, api):
    response = api.as_key(world.acme_key).post(
        "/v3/memories/add/", {"messages": "hi", "user_id": "u1", "app_id": "not an app!"}, format="json"
    )
    assert response.status_code == 400
    row = APIRequest.objects.for_tenant(world.acme).get()
    assert (row.method, row.path, row.status, row.app_id) == ("POST", "/v3/memories/add/", 400, "")
    missing = api.get("/v1/memories/0f3c9d1e-0000-4000-8000-000000000000/")
    assert missing.status_code == 404
    row = APIRequest.objects.for_tenant(world.acme).get(status=404)
    assert row.path == "/v1/memories/0f3c9d1e-0000-4000-8000-000000000000/"  # ids in a path are kept


@pytest.mark.django_db
def test_the_path_keeps_query_names_never_their_values_nor_the_key(world, api):
    secret_words = "my-diagnosis-is-private"
    response = api.as_key(world.acme_key).delete(f"/v1/memories/?user_id={secret_words}&app_id=sports_portal")
    assert response.status_code < 500
    row = APIRequest.objects.for_tenant(world.acme).get()
    assert row.path == "/v1/memories/?user_id=…&app_id=…"
    assert row.app_id == "sports_portal"  # the one app the request named
    assert secret_words not in _fields(row) and world.acme_key not in _fields(row)
    api.get("/v1/entities/?odd%20name%3Dtext=1")
    assert APIRequest.objects.for_tenant(world.acme).latest("created_at").path == "/v1/entities/?…=…"


@pytest.mark.django_db
def test_requests_without_a_valid_key_are_not_logged(world, api):
    assert api.get("/v1/ping/").status_code == 401
    assert api.as_key("nope.nothing").get("/v1/ping/").status_code == 401
    api.credentials()
    api.force_login(world.acme_admin.user)
    assert api.get("/v1/entities/", HTTP_X_MEMADMIN_TENANT="acme").status_code == 200
    assert not APIRequest.objects.exists()


@pytest.mark.django_db
def test_a_restricted_key_is_logged_under_its_one_app(world, api):
    key = world.make_key(world.acme, name="sports-only", apps=[world.acme_sports])
    assert api.as_key(key).get("/v1/entities/").status_code == 200
    assert APIRequest.objects.get(key_name="sports-only").app_id == "sports_portal"


@pytest.mark.django_db
def test_rows_older_than_the_retention_leave_with_the_sweep(world, settings):
    settings.MEMADMIN_REQUEST_LOG_DAYS = 30
    key = TenantAPIKey.objects.get(name="acme-server")
    now = timezone.now()

    def row(age: timedelta) -> APIRequest:
        return APIRequest.objects.create(
            tenant=world.acme,
            key=key,
            key_prefix=key.prefix,
            key_name=key.name,
            method="GET",
            path="/v1/ping/",
            status=200,
            latency_ms=1.0,
            created_at=now - age,
        )

    row(timedelta(days=31))
    row(timedelta(days=30, minutes=1))
    recent = row(timedelta(days=29))
    assert jobs_sweep()["request_log_pruned"] == 2
    assert list(APIRequest.objects.values_list("pk", flat=True)) == [recent.pk]
    settings.MEMADMIN_REQUEST_LOG_DAYS = 1
    assert request_log_prune() == 1 and not APIRequest.objects.exists()


@pytest.mark.django_db
def test_a_client_address_that_is_no_ip_is_stored_as_none(world, api):
    assert api.as_key(world.acme_key).get("/v1/ping/", REMOTE_ADDR="unix:/run/gunicorn.sock").status_code == 200
    assert api.get("/v1/ping/", REMOTE_ADDR="::ffff:10.0.0.7").status_code == 200
    addresses = APIRequest.objects.order_by("created_at").values_list("client_ip", flat=True)
    assert list(addresses) == [None, "::ffff:10.0.0.7"]


def test_control_characters_in_a_path_are_logged_as_their_escapes():
    """A hostile id's NUL byte is text PostgreSQL refuses: the row keeps it as %00 (and a refused row never
    breaks the request's transaction: the write is a savepoint)."""
    from django.test import RequestFactory

    from tenants.request_log.recording import logged_path

    request = RequestFactory().get("/v1/memories/a\x00b\x1f/", {"user_id": "x"})
    assert logged_path(request) == "/v1/memories/a%00b%1F/?user_id=…"
