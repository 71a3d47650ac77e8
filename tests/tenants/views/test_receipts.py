"""tenants/views/receipts.py and where else receipts show: the Erasures page (support and admin; filters by a
Form, bad input 400; each receipt downloadable and verifiable), a person's page, the lookup of an erased person,
the end user's "your data" page, and the Jobs page's words."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from memadmin.memory import receipts, services
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt
from tenants.links import data_link_issue
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, login


@pytest.fixture
def erased(world, memories):
    """acme: alice erased by support (two apps), then bob's one memory by the admin; globex: its alice."""
    support, admin = scope_for_membership(world.acme_support), scope_for_membership(world.acme_admin)
    services.memory_delete_matching(scope=support, filters=filter_from_fields(user_id="alice"))
    services.memory_delete(scope=admin, memory_id=memories.bob.id)
    services.memory_delete_matching(
        scope=scope_for_membership(world.globex_admin), filters=filter_from_fields(user_id="alice")
    )
    return {r.kind: r for r in ErasureReceipt.objects.for_tenant(world.acme)}


def page(client, **query):
    return client.get(reverse("erasures", args=["acme"]), query)


def test_support_sees_every_erasure_of_the_tenant_and_downloads_a_verifiable_receipt(client, world, erased):
    login(client, world.acme_support)
    response = page(client)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="receipt-count">2<' in html
    assert "A person" in html and "One memory" in html and "concierge_app, sports_portal" in html
    assert "on disk until at most" in html and receipts.key_id() in html and "BEGIN PUBLIC KEY" in html
    assert str(ErasureReceipt.objects.for_tenant(world.globex).get().pk) not in html
    assert 'aria-current="page">Erasures<' in html  # the nav entry
    download = client.get(reverse("erasure_receipt", args=["acme", erased["user"].pk]))
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    document = json.loads(download.content)
    assert receipts.receipt_verify(document)["kind"] == "user"
    assert "vegetarian" not in download.content.decode()
    pem = client.get(reverse("erasure_public_key", args=["acme"])).content.decode()
    assert pem == receipts.public_key_pem()


def test_purged_receipts_say_when(client, world, erased):
    later = timezone.now() + timedelta(seconds=5)
    receipts.receipt_mark_purged(erased_before=later, purged_at=later)
    login(client, world.acme_admin)
    html = page(client).content.decode()
    assert "purged from disk at" in html and "on disk until at most" not in html


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({"user_id": "alice"}, 1),
        ({"user_id": "Alice"}, 0),
        ({"app_id": "sports_portal"}, 1),
        ({"app_id": "concierge_app"}, 2),
        ({"kind": "memory"}, 1),
        ({"kind": "offboard"}, 0),
        ({"date_from": "2000-01-01", "date_to": "2000-01-02"}, 0),
        ({"date_from": "2000-01-01"}, 2),
    ],
)
def test_filters(client, world, erased, query, count):
    login(client, world.acme_support)
    response = page(client, **query)
    assert response.status_code == 200 and f'data-testid="receipt-count">{count}<' in response.content.decode()


def test_the_results_alone_for_htmx(client, world, erased):
    login(client, world.acme_support)
    response = client.get(reverse("erasures", args=["acme"]), {"kind": "user"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'data-testid="receipt-count">1<' in html


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "yesterday"},
        {"date_from": "2026-02-02", "date_to": "2026-02-01"},
        {"kind": "everything"},
        {"user_id": "al\u202eice"},
        {"app_id": "x\x00"},
        {"page": "0"},
        {"page": "x"},
        {"user_id": "a" * 129},
    ],
)
def test_bad_filters_are_400(client, world, erased, query):
    login(client, world.acme_support)
    response = page(client, **query)
    assert response.status_code == 400 and "Those filters are not valid" in response.content.decode()


def test_paged(client, world, erased, settings):
    from tenants.views import receipts as receipt_views

    login(client, world.acme_support)
    original, receipt_views.PAGE_SIZE = receipt_views.PAGE_SIZE, 1
    try:
        html = page(client, page=2).content.decode()
        assert "page 2 of 2" in html and html.count("Receipt (JSON)") == 1 and "← Newer" in html
        assert "page 2 of 2" in page(client, page=99).content.decode()  # past the end: the last page
    finally:
        receipt_views.PAGE_SIZE = original


def test_viewer_403_outsider_404(client, world, erased):
    receipt_url = reverse("erasure_receipt", args=["acme", erased["user"].pk])
    login(client, world.acme_viewer)
    assert page(client).status_code == 403 and client.get(receipt_url).status_code == 403
    assert "Erasures" not in client.get(reverse("overview", args=["acme"])).content.decode()
    login(client, world.globex_admin)
    assert page(client).status_code == 404 and client.get(receipt_url).status_code == 404
    # globex's own URL, acme's receipt: not found, like one that does not exist
    assert client.get(reverse("erasure_receipt", args=["globex", erased["user"].pk])).status_code == 404
    login(client, world.outsider)
    assert page(client).status_code == 404


def test_the_person_page_and_the_lookup_of_an_erased_person(client, world, memories):
    add_scope = scope_for_membership(world.acme_admin)
    services.memory_delete(scope=add_scope, memory_id=memories.alice_food.id)
    login(client, world.acme_support)
    html = client.get(reverse("user", args=["acme"]), {"user_id": "alice"}).content.decode()
    assert 'data-testid="user-receipts"' in html and "One memory" in html
    services.memory_delete_matching(scope=add_scope, filters=filter_from_fields(user_id="alice"))
    html = client.get(reverse("user", args=["acme"]), {"user_id": "alice"}).content.decode()
    last = ErasureReceipt.objects.for_tenant(world.acme).filter(user_id="alice").first()
    assert 'data-testid="erased-on"' in html and "was erased on" in html and "check the spelling" not in html
    assert reverse("erasure_receipt", args=["acme", last.pk]) in html and "All 2 erasures" in html
    # someone never stored: the old advice
    assert "check the spelling" in client.get(reverse("user", args=["acme"]), {"user_id": "nobody"}).content.decode()


def test_the_your_data_page_shows_the_persons_own_receipts(client, world, memories):
    _link, alice_page = data_link_issue(scope=scope_for_membership(world.acme_admin), user_id="alice")
    services.memory_delete(scope=scope_for_membership(world.acme_support), memory_id=memories.bob.id)
    assert 'data-testid="your-receipts"' not in client.get(alice_page).content.decode()
    services.memory_delete(scope=scope_for_membership(world.acme_support), memory_id=memories.alice_food.id)
    assert ">Acme staff<" in client.get(alice_page).content.decode()
    assert client.post(alice_page + "delete-all/", {"confirm": "on"}).status_code == 302
    html = client.get(alice_page).content.decode()
    mine = ErasureReceipt.objects.get(user_id="alice", tenant=world.acme, kind="own_data")
    assert 'data-testid="your-receipts"' in html and "A person&#x27;s own delete-all" in html and ">you<" in html
    download = client.get(f"{alice_page}receipts/{mine.pk}/receipt.json")
    assert download.status_code == 200 and receipts.receipt_verify(json.loads(download.content))["id"] == str(mine.pk)
    bobs = ErasureReceipt.objects.get(user_id="bob")
    assert client.get(f"{alice_page}receipts/{bobs.pk}/receipt.json").status_code == 404


def test_the_jobs_page_says_where_immediate_erasures_are(client, world):
    login(client, world.acme_support)
    html = client.get(reverse("jobs", args=["acme"])).content.decode()
    assert "Erasures you start appear here" not in html and "erasures you start appear here" not in html
    assert reverse("erasures", args=["acme"]) in html
