"""The seeds' flows, run by the official mem0.MemoryClient against a live server (only host= changed)."""

import pytest
from mem0.exceptions import AuthenticationError, MemoryNotFoundError, ValidationError

from memadmin.memory.models import AuditEvent
from tenants.models import App, TenantAPIKey
from tests.support.stores import on_both_stores

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = [
    {"role": "user", "content": "I am vegetarian. Please remember that."},
    {"role": "assistant", "content": "Got it. I will remember you are vegetarian."},
]
BOB = [
    {"role": "user", "content": "I always want a window seat on flights."},
    {"role": "assistant", "content": "Noted. Window seat preference saved."},
]


@on_both_stores
def test_per_user_scoping_flow(live_world, memory_client):
    """Seed 1: two users, searches and listings never cross, delete_all(user_id) removes one user only."""
    client = memory_client(live_world.acme_key)
    assert client.org_id == "acme" and client.project_id == "acme"

    added_alice = client.add(ALICE, user_id="u_alice")["results"]
    added_bob = client.add(BOB, user_id="u_bob")["results"]
    assert {r["user_id"] for r in added_alice} == {"u_alice"} and added_alice[0]["event"] == "ADD"
    assert added_bob[0]["app_id"] == "concierge_app"  # the tenant's default app

    alice_found = client.search("food preferences", filters={"user_id": "u_alice"})["results"]
    bob_found = client.search("food preferences", filters={"user_id": "u_bob"})["results"]
    assert alice_found and all(m["user_id"] == "u_alice" for m in alice_found)
    assert "vegetarian" in alice_found[0]["memory"]
    assert all(m["user_id"] == "u_bob" and "vegetarian" not in m["memory"] for m in bob_found)
    assert all(0.0 <= m["score"] <= 1.0 for m in alice_found + bob_found)

    alice_all = client.get_all(filters={"user_id": "u_alice"})
    assert alice_all["count"] == len(added_alice) == len(alice_all["results"])
    assert {m["id"] for m in alice_all["results"]} == {m["id"] for m in added_alice}

    deleted = client.delete_all(user_id="u_alice")
    assert deleted["deleted"] == len(added_alice) and deleted["remaining"] == 0

    assert client.get_all(filters={"user_id": "u_alice"})["count"] == 0
    bob_all = client.get_all(filters={"user_id": "u_bob"})
    assert bob_all["count"] == len(added_bob)
    # Audited as the key, from the service layer.
    actions = set(AuditEvent.objects.filter(actor="key:acme-server").values_list("action", flat=True))
    assert {"memory.add", "memory.search", "memory.list", "memory.delete_matching"} <= actions


@on_both_stores
def test_user_agent_app_run_scoping_flow(live_world, memory_client):
    """Seed 2: ids for two apps and two agents; AND filters, wildcards, delete_all(agent_id, app_id), export."""
    client = memory_client(live_world.acme_key)
    cam = client.add(
        [
            {"role": "user", "content": "I'm Cam. Keep in mind I avoid shellfish and prefer boutique hotels."},
            {"role": "assistant", "content": "Noted! I'll use those preferences in future itineraries."},
        ],
        user_id="traveler_cam",
        agent_id="travel_planner",
        run_id="tokyo-2025-weekend",
        app_id="concierge_app",
        version="v2",
    )["results"]
    chef = client.add(
        [{"role": "user", "content": "I'd like to try some authentic Kyoto kaiseki dining experiences."}],
        user_id="traveler_cam",
        agent_id="chef_recommender",
        run_id="menu-planning-2025-04",
        app_id="concierge_app",
        version="v2",
    )["results"]
    # An app the tenant did not have yet: created on first write (auto_create_apps is on by default).
    for user in ("athlete_jane", "coach_mike"):
        client.add(f"{user} trains on Tuesdays", user_id=user, agent_id="coach_bot", app_id="sports_brand_portal")
    assert App.objects.filter(tenant=live_world.acme, app_id="sports_brand_portal").exists()

    user_scope = {"AND": [{"user_id": "traveler_cam"}, {"app_id": "concierge_app"}, {"run_id": "tokyo-2025-weekend"}]}
    found = client.search("Any dietary restrictions?", filters=user_scope)["results"]
    # Within the run's scope only; the assistant's "Noted!" scores under Mem0's default threshold of 0.1.
    assert {m["id"] for m in found} <= {m["id"] for m in cam}
    assert any("shellfish" in m["memory"] for m in found)

    agent_scope = {"AND": [{"agent_id": "travel_planner"}, {"app_id": "concierge_app"}]}
    assert {m["agent_id"] for m in client.search("Any dietary restrictions?", filters=agent_scope)["results"]} == {
        "travel_planner"
    }
    safe = {"AND": [{"agent_id": "chef_recommender"}, {"app_id": "concierge_app"}, {"run_id": "menu-planning-2025-04"}]}
    chef_found = client.search("Any food alerts?", filters=safe)["results"]
    assert [m["id"] for m in chef_found] == [m["id"] for m in chef]

    # Wildcards match any non-null value; the other app never shows up.
    enterprise = {"AND": [{"app_id": "sports_brand_portal"}, {"user_id": "*"}, {"agent_id": "*"}]}
    page = client.get_all(filters=enterprise, page=1, page_size=10)
    assert sorted(m["user_id"] for m in page["results"]) == ["athlete_jane", "coach_mike"]
    assert page["next"] is None and page["previous"] is None
    first = client.get_all(filters=enterprise, page=1, page_size=1)
    assert first["count"] == 2 and "page=2" in first["next"]
    # OR and "in"
    either = {"OR": [{"agent_id": "chef_recommender"}, {"user_id": {"in": ["coach_mike"]}}]}
    assert {m["user_id"] for m in client.get_all(filters=either)["results"]} == {"traveler_cam", "coach_mike"}

    export = client.get_memory_export(filters={"AND": [{"app_id": "sports_brand_portal"}]})
    assert export["count"] == 2 and {m["app_id"] for m in export["results"]} == {"sports_brand_portal"}
    assert all("history" in m for m in export["results"])
    created = client.create_memory_export(schema="{}", filters={"user_id": "traveler_cam"})
    by_id = client.get_memory_export(memory_export_id=created["id"])
    assert by_id["id"] == created["id"] and by_id["count"] == len(cam) + len(chef)

    # delete_all(app_id=...) alone offboards the app: tests/tenants/api/test_seeds.py runs the tutorial's call.
    deleted = client.delete_all(agent_id="coach_bot", app_id="sports_brand_portal")
    assert deleted["deleted"] == 2 and deleted["remaining"] == 0
    assert client.get_all(filters={"app_id": "sports_brand_portal"})["count"] == 0
    assert client.get_all(filters={"user_id": "traveler_cam"})["count"] == len(cam) + len(chef)

    client.delete_all(user_id="traveler_cam", run_id="tokyo-2025-weekend")  # close_ticket
    assert [m["id"] for m in client.get_all(filters={"user_id": "traveler_cam"})["results"]] == [m["id"] for m in chef]


def test_single_memory_methods(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    memory = client.add("I like green tea", user_id="u1", agent_id="a1", run_id="r1")["results"][0]

    got = client.get(memory["id"])
    assert got["memory"] == "I like green tea" and got["user_id"] == "u1" and got["app_id"] == "concierge_app"

    updated = client.update(memory["id"], text="I like jasmine tea", metadata={"source": "chat"})
    assert updated["memory"] == "I like jasmine tea" and updated["metadata"]["source"] == "chat"
    history = client.history(memory["id"])
    assert [h["event"] for h in history][-1] == "UPDATE" and history[-1]["new_memory"] == "I like jasmine tea"
    kept = client.update(memory["id"], metadata={"source": "form"})
    assert kept["memory"] == "I like jasmine tea" and kept["metadata"]["source"] == "form"

    entities = client.users()["results"]
    assert {(e["type"], e["name"], e["total_memories"]) for e in entities} == {
        ("app", "concierge_app", 1),
        ("user", "u1", 1),
        ("agent", "a1", 1),
        ("run", "r1", 1),
    }

    assert client.delete(memory["id"])["deleted"] == 1
    with pytest.raises(MemoryNotFoundError):
        client.get(memory["id"])


def test_batch_and_entity_methods(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    ids = [client.add(f"fact {i}", user_id="u_batch")["results"][0]["id"] for i in range(3)]
    other = client.add("keep me", user_id="u_keep")["results"][0]["id"]

    result = client.batch_update([{"memory_id": i, "text": f"new fact {n}"} for n, i in enumerate(ids)])
    assert result["updated"] == 3
    assert client.get(ids[2])["memory"] == "new fact 2"

    with pytest.raises(MemoryNotFoundError):
        client.batch_delete([{"memory_id": ids[0]}, {"memory_id": "00000000-0000-0000-0000-000000000000"}])
    assert client.get(ids[0])  # nothing was deleted
    assert client.batch_delete([{"memory_id": ids[0]}, {"memory_id": ids[1]}])["deleted"] == 2

    assert client.delete_users(user_id="u_batch") == {"message": "Entity deleted successfully."}
    assert client.get_all(filters={"user_id": "u_batch"})["count"] == 0
    assert client.get(other)["memory"] == "keep me"


def test_client_sees_status_codes_as_its_exceptions(live_world, memory_client):
    client = memory_client(live_world.acme_key)
    with pytest.raises(ValidationError, match="there is no global bucket"):
        client.add("orphan fact", metadata={"x": 1})
    with pytest.raises(ValidationError, match="every memory belongs to one end user"):
        client.add("agent fact", agent_id="a1")
    with pytest.raises(ValidationError, match="Unsupported filter field or operator: colour"):
        client.get_all(filters={"colour": "red"})
    with pytest.raises(ValidationError, match="delete_all needs an exact"):
        client.delete_all()
    TenantAPIKey.objects.update(revoked=True)
    with pytest.raises(AuthenticationError, match="Invalid or revoked API key"):
        client.get_all(filters={"user_id": "u1"})


def test_revoked_or_unknown_key_cannot_start_a_client(live_world, live_server):
    from mem0 import MemoryClient

    TenantAPIKey.objects.filter(tenant=live_world.acme).update(revoked=True)
    with pytest.raises(ValueError, match="Invalid or revoked API key"):
        MemoryClient(api_key=live_world.acme_key, host=live_server.url)
    with pytest.raises(ValueError, match="Invalid or revoked API key"):
        MemoryClient(api_key="nope.nope", host=live_server.url)


def test_keyword_search_is_opt_in_through_the_official_client(live_world, memory_client):
    """Mem0's own search parameter: without it the scores are the similarity; with it (as a keyword argument or
    in SearchMemoryOptions) the memory holding the word asked for scores higher, and nothing else changes."""
    from mem0.client.types import SearchMemoryOptions

    client = memory_client(live_world.acme_key)
    client.add("I run 10k every Saturday morning.", user_id="u_ana")
    client.add("I prefer morning workouts before 7am.", user_id="u_ana")
    client.add("I run 10k every Saturday morning.", user_id="u_ben")
    ana = {"user_id": "u_ana"}
    plain = {m["id"]: m["score"] for m in client.search("Saturday", filters=ana)["results"]}
    hybrid = client.search("Saturday", filters=ana, keyword_search=True)["results"]
    typed = client.search("Saturday", SearchMemoryOptions(filters=ana, keyword_search=True))["results"]
    assert [m["id"] for m in hybrid] == [m["id"] for m in typed] and {m["user_id"] for m in hybrid} == {"u_ana"}
    saturday = hybrid[0]
    assert "Saturday" in saturday["memory"] and saturday["score"] > plain[saturday["id"]]
    assert all(m["score"] == plain[m["id"]] for m in hybrid if "Saturday" not in m["memory"])
    with pytest.raises(ValidationError):
        client.search("Saturday", filters=ana, keyword_search="perhaps")
