"""Every stored id reverses into a URL that loads.

user_id / agent_id / run_id / memory_id may contain ``/``, ``..`` or ``%2F``
(Mem0 OSS agents write them straight into the collection); app_ids are slug-like
from now on, but an app stored before the rule must not break its tenant's pages.
"""

from urllib.parse import unquote

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import CommandError, call_command
from django.urls import Resolver404, resolve, reverse

from memadmin.memory import services
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.memadmin.memory.rawhash import put

ODD_IDS = ["a/b", "..", ".", "~..", "~", "%2F", "a/../b", "x/delete", "a?b#c", "/lead", "trail/"]


@pytest.mark.parametrize(
    "url", ["/t/acme/apps/a%00b/", "/t/acme/keys/a%00b/revoke/", "/t/acme/memories/concierge_app/a%00b/"]
)
def test_a_nul_in_an_id_matches_no_url(url):
    """No stored id holds NUL, and PostgreSQL refuses it in a query (DataError, a 500): the URL is a 404."""
    with pytest.raises(Resolver404):
        resolve(unquote(url))


@pytest.mark.parametrize("memory_id", ODD_IDS)
def test_no_id_becomes_a_dot_segment_a_browser_would_remove(memory_id):
    """A browser removes "." and ".." path segments (and their %2e forms) before sending the request."""
    url = reverse("memory", kwargs={"tenant_slug": "acme", "app_id": "concierge_app", "memory_id": memory_id})
    segments = unquote(url).split("/")
    assert not any(segment and not segment.strip(".") for segment in segments), url


@pytest.mark.parametrize("memory_id", ODD_IDS)
def test_memory_urls_reverse_and_resolve_for_any_memory_id(memory_id):
    for name, extra in (("memory", {}), ("memory_delete", {})):
        url = reverse(name, kwargs={"tenant_slug": "acme", "app_id": "concierge_app", "memory_id": memory_id, **extra})
        match = resolve(unquote(url))  # the server unescapes the path once before resolving
        assert match.url_name == name and match.kwargs["memory_id"] == memory_id
    for name in ("api-memory-detail", "api-memory-history"):
        match = resolve(unquote(reverse(name, kwargs={"memory_id": memory_id})))
        assert match.url_name == name and match.kwargs["memory_id"] == memory_id
    match = resolve(unquote(reverse("api-entity-delete", kwargs={"entity_type": "user", "name": memory_id})))
    assert match.kwargs["name"] == memory_id


@pytest.mark.parametrize("odd", ODD_IDS)
def test_user_pages_load_for_odd_ids(hostile_world, staff_client, raw_valkey, odd):
    app = hostile_world.acme.apps.get(app_id="concierge_app")
    memory_id = put(
        raw_valkey, app.collection_name, memory_id=odd, user_id=odd, agent_id=odd, run_id=odd, text="odd one"
    )
    client = staff_client("acme", "admin")
    page = client.get(reverse("user", kwargs={"tenant_slug": "acme"}), {"user_id": odd})
    assert page.status_code == 200, page.content[:300]
    detail_url = reverse("memory", kwargs={"tenant_slug": "acme", "app_id": app.app_id, "memory_id": memory_id})
    assert detail_url in page.content.decode()
    detail = client.get(detail_url)
    assert detail.status_code == 200 and "odd one" in detail.content.decode()
    browse = client.get(reverse("memories", kwargs={"tenant_slug": "acme"}), {"agent_id": odd})
    assert browse.status_code == 200 and detail_url in browse.content.decode()
    export = client.get(reverse("user_export", kwargs={"tenant_slug": "acme"}), {"user_id": odd, "format": "json"})
    assert export.status_code == 200 and b"odd one" in b"".join(export.streaming_content)
    gone = client.post(
        reverse("memory_delete", kwargs={"tenant_slug": "acme", "app_id": app.app_id, "memory_id": memory_id}),
        {"confirm": "yes"},
    )
    assert gone.status_code in (200, 302), gone.content[:300]
    assert client.get(detail_url).status_code == 404


def test_an_app_stored_before_the_alphabet_does_not_break_the_dashboard(hostile_world, staff_client):
    legacy = App.objects.create(tenant=hostile_world.acme, app_id="x/y", name="legacy")
    admin = scope_for_membership(hostile_world.acme_admin)
    services.memory_add(scope=admin, app_id="x/y", user_id="alice", messages="stored in a legacy app")
    client = staff_client("acme", "admin")
    for name in ("overview", "memories", "users", "jobs"):
        response = client.get(reverse(name, kwargs={"tenant_slug": "acme"}))
        assert response.status_code == 200, (name, response.content[:300])
    user_page = client.get(reverse("user", kwargs={"tenant_slug": "acme"}), {"user_id": "alice"})
    assert user_page.status_code == 200 and "stored in a legacy app" in user_page.content.decode()
    offboard = reverse("app_offboard", kwargs={"tenant_slug": "acme", "app_id": legacy.app_id})
    assert client.get(offboard).status_code == 200
    with pytest.raises(DjangoValidationError):
        legacy.full_clean()


def test_django_admin_refuses_a_bad_app_id(hostile_world, admin_client):
    response = admin_client.post(
        reverse("admin:tenants_app_add"),
        {
            "tenant": hostile_world.acme.pk,
            "app_id": "x/y",
            "name": "x",
            "collection_name": "",
            "status": "active",
        },
    )
    assert response.status_code == 200 and "app_id must be" in response.content.decode()
    assert not App.objects.filter(app_id="x/y").exists()


def test_createapikey_refuses_a_bad_app_id(hostile_world):
    with pytest.raises(CommandError, match="app_id must be"):
        call_command("createapikey", "acme", "--name", "k", "--app", "x/y")
