"""The page pieces of in-place updates: the #counts partial (HX-Target: counts) and the
recount header answer only inside the caller's scope, like the pages they belong to; a key row swap is the
key's own tenant only."""

import pytest

from tests.support.hostile import marker, your_data_url

COUNTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "counts"}
RECOUNT = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results", "HTTP_MEMADMIN_RECOUNT": "1"}


@pytest.mark.parametrize("headers", [COUNTS, RECOUNT])
def test_partials_keep_the_pages_gates(hostile_world, staff_client, client, headers):
    assert client.get("/t/acme/", **headers).status_code == 302  # anonymous: to the login page
    globex = staff_client("globex", "admin")
    for url in ("/t/acme/", "/t/acme/user/?user_id=alice", "/t/acme/memories/"):
        assert globex.get(url, **headers).status_code == 404  # another tenant's member: not found
    assert staff_client("acme", "viewer").get("/t/acme/user/?user_id=alice", **headers).status_code == 403
    own = staff_client("acme", "support").get("/t/acme/user/?user_id=alice", **headers)
    body = own.content.decode()
    assert own.status_code == 200 and marker(hostile_world.globex) not in body and "<html" not in body


def test_the_counts_of_a_your_data_link_are_its_person_only(hostile_world, client):
    html = client.get(your_data_url(hostile_world, "acme"), **COUNTS).content.decode()
    assert "2 memories stored for" in html and "bob" not in html  # alice's two at acme, not bob's, not globex's
    hostile_world.links["acme"].row.revoked_at = hostile_world.links["acme"].row.created_at
    hostile_world.links["acme"].row.save()
    assert client.get(your_data_url(hostile_world, "acme"), **COUNTS).status_code == 403


def test_hostile_user_ids_in_the_counts_partial_are_400_or_nothing(hostile_world, staff_client):
    from tests.support.hostile import hostile_id_values

    support = staff_client("acme", "support")
    for value in hostile_id_values():
        # A lone surrogate cannot be encoded by a client at all: it arrives as the bytes of a URL-encoded one.
        query = "user_id=%ED%BF%BF" if value == "\udfff" else {"user_id": value}
        response = (
            support.get("/t/acme/user/", query, **COUNTS)
            if isinstance(query, dict)
            else support.get(f"/t/acme/user/?{query}", **COUNTS)
        )
        assert response.status_code in (200, 400), value
        assert marker(hostile_world.globex) not in response.content.decode()


def test_another_tenants_key_row_cannot_be_swapped_in(hostile_world, staff_client):
    prefix = hostile_world.keys["globex"].full_row.prefix
    response = staff_client("acme", "admin").post(f"/t/acme/keys/{prefix}/revoke/", HTTP_HX_REQUEST="true")
    assert response.status_code == 404 and prefix not in response.content.decode()
    hostile_world.keys["globex"].full_row.refresh_from_db()
    assert not hostile_world.keys["globex"].full_row.revoked
