"""The scope rule (docs/security.md "Tenancy and scope") across every selector and service: isolation across users,
apps and tenants for list, search, get, history, export, counts, add, update, delete and delete-matching, in
both directions, for staff, end-user, API-key and offboarded-app scopes. How a Scope is built, and what each
role may do with it, is test_scope.py.

acme and globex both have an app called concierge_app and both have users called
alice and bob: only the scope separates them.
"""

from types import SimpleNamespace

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound, PermissionDenied
from memadmin.memory.filters import EVERYTHING, filter_from_fields
from memadmin.memory.history import history_for

SEED = [
    # (tenant, app_id, label, user_id, agent_id, run_id, text)
    ("acme", "concierge_app", "alice_booker", "alice", "booker", "r1", "Alice prefers aisle seats on flights"),
    ("acme", "concierge_app", "alice_plain", "alice", None, None, "Alice is allergic to peanuts"),
    ("acme", "concierge_app", "bob_booker", "bob", "booker", None, "Bob wants a hotel near the station"),
    ("acme", "sports_portal", "alice_coach", "alice", "coach", None, "Alice runs five kilometres every morning"),
    ("globex", "concierge_app", "alice_booker", "alice", "booker", "r1", "Alice likes window seats on trains"),
    ("globex", "concierge_app", "bob_plain", "bob", None, None, "Bob collects vintage watches"),
    ("globex", "other_app", "alice_other", "alice", "helper", None, "Alice speaks French and Italian"),
]
DIRECTIONS = [("acme", "globex"), ("globex", "acme")]


@pytest.fixture
def seeded(world, add):
    ids = {}
    for tenant, app_id, label, user_id, agent_id, run_id, text in SEED:
        scope = world.admin(getattr(world, tenant))
        ids[(tenant, label)] = add(scope, app_id, user_id, text, agent_id=agent_id, run_id=run_id).id
    return SimpleNamespace(world=world, ids=ids)


def expected(seeded, tenant, *, user=None, app=None, agent=None):
    return {
        seeded.ids[(t, label)]
        for t, app_id, label, user_id, agent_id, _, _ in SEED
        if t == tenant
        and (user is None or user_id == user)
        and (app is None or app_id == app)
        and (agent is None or (agent == "*" and agent_id) or agent_id == agent)
    }


def tenant_ids(seeded, tenant):
    return expected(seeded, tenant)


def listed(scope, **fields):
    return {r.id for r in selectors.memory_list(scope=scope, filters=filter_from_fields(**fields)).items}


def test_list_sees_only_own_tenant_and_filters_narrow(seeded):
    # Read-only: both directions on one seeding.
    for mine, theirs in DIRECTIONS:
        w = seeded.world
        scope = w.admin(getattr(w, mine))
        assert listed(scope) == tenant_ids(seeded, mine)
        assert not listed(scope) & tenant_ids(seeded, theirs)
        assert listed(scope, user_id="alice") == expected(seeded, mine, user="alice")
        assert listed(scope, user_id="bob") == expected(seeded, mine, user="bob")
        assert listed(scope, app_id="concierge_app") == expected(seeded, mine, app="concierge_app")
        assert listed(scope, app_id="concierge_app", user_id="alice") == expected(
            seeded, mine, app="concierge_app", user="alice"
        )
        # The other tenant's app names are unknown here: filtering on one matches nothing, never everything.
        other_only_app = "other_app" if mine == "acme" else "sports_portal"
        assert listed(scope, app_id=other_only_app) == set()
        assert selectors.memory_list(scope=scope, filters=filter_from_fields(app_id=other_only_app)).total == 0
        assert listed(scope, user_id="carol") == set()


def test_search_sees_only_own_tenant(seeded):
    # Read-only: both directions on one seeding.
    for mine, theirs in DIRECTIONS:
        w = seeded.world
        scope = w.admin(getattr(w, mine))
        for query in ("seats", "Alice"):
            res = selectors.memory_search(scope=scope, query=query, top_k=20)
            found = {r.id for r in res}
            assert found == tenant_ids(seeded, mine)
            assert not found & tenant_ids(seeded, theirs)
        for record in selectors.memory_search(scope=scope, query="seats", filters=filter_from_fields(user_id="alice")):
            assert record.user_id == "alice" and record.id in tenant_ids(seeded, mine)
            assert record.app_id in {a.app_id for a in scope.apps}
        found = selectors.memory_search(scope=scope, query="seats", filters=filter_from_fields(app_id="concierge_app"))
        assert {r.id for r in found} == expected(seeded, mine, app="concierge_app")
        assert all(r.score is not None for r in found)


def test_get_and_history_of_other_tenant_are_not_found(seeded):
    # Read-only: both directions on one seeding.
    for mine, theirs in DIRECTIONS:
        w = seeded.world
        scope = w.admin(getattr(w, mine))
        for memory_id in tenant_ids(seeded, mine):
            assert selectors.memory_get(scope=scope, memory_id=memory_id).id == memory_id
            assert [row["event"] for row in selectors.memory_history(scope=scope, memory_id=memory_id)] == ["ADD"]
        for memory_id in tenant_ids(seeded, theirs):
            with pytest.raises(NotFound):
                selectors.memory_get(scope=scope, memory_id=memory_id)
            with pytest.raises(NotFound):
                selectors.memory_get(scope=scope, memory_id=memory_id, app_id="concierge_app")
            with pytest.raises(NotFound):
                selectors.memory_history(scope=scope, memory_id=memory_id)
        # Same tenant, wrong app: also NotFound (the id lives in another collection).
        sports_or_other = "sports_portal" if mine == "acme" else "other_app"
        concierge_id = seeded.ids[(mine, "alice_booker")]
        with pytest.raises(NotFound):
            selectors.memory_get(scope=scope, memory_id=concierge_id, app_id=sports_or_other)
        with pytest.raises(NotFound):
            selectors.memory_get(scope=scope, memory_id=concierge_id, app_id="no_such_app")


def test_export_and_counts_only_own_tenant(seeded):
    # Read-only: both directions on one seeding.
    for mine, theirs in DIRECTIONS:
        w = seeded.world
        scope = w.admin(getattr(w, mine))
        exported = list(selectors.memory_export(scope=scope))
        assert {item["id"] for item in exported} == tenant_ids(seeded, mine)
        assert not {item["id"] for item in exported} & tenant_ids(seeded, theirs)
        assert len(exported) == len(tenant_ids(seeded, mine))
        assert all(item["history"] and item["history"][0]["event"] == "ADD" for item in exported)
        alice = list(selectors.memory_export(scope=scope, filters=filter_from_fields(user_id="alice")))
        assert {item["id"] for item in alice} == expected(seeded, mine, user="alice")

        counts = selectors.memory_counts(scope=scope)
        mine_apps = {a.app_id for a in scope.apps}
        assert set(counts.per_app) == mine_apps
        assert counts.total == len(tenant_ids(seeded, mine))
        rows = [row for row in SEED if row[0] == mine]
        assert dict(counts.per_user) == {u: sum(1 for r in rows if r[3] == u) for u in {r[3] for r in rows}}
        assert dict(counts.per_agent) == {a: sum(1 for r in rows if r[4] == a) for a in {r[4] for r in rows if r[4]}}
        assert selectors.memory_count(scope=scope) == counts.total
        assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="bob")) == len(
            expected(seeded, mine, user="bob")
        )


@pytest.mark.parametrize("mine,theirs", DIRECTIONS)
def test_add_lands_in_own_tenant_only(seeded, add, mine, theirs):
    w = seeded.world
    scope, other = w.admin(getattr(w, mine)), w.admin(getattr(w, theirs))
    before_theirs = listed(other)
    record = add(scope, "concierge_app", "alice", "Alice booked a table for two")
    assert record.id in listed(scope, app_id="concierge_app", user_id="alice")
    assert listed(other) == before_theirs
    with pytest.raises(NotFound):
        selectors.memory_get(scope=other, memory_id=record.id)
    # An app of the other tenant cannot be written to by name.
    other_only_app = "other_app" if mine == "acme" else "sports_portal"
    with pytest.raises(NotFound):
        services.memory_add(scope=scope, app_id=other_only_app, messages="x", user_id="alice")


@pytest.mark.parametrize("mine,theirs", DIRECTIONS)
def test_update_and_delete_of_other_tenant_are_not_found(seeded, raw_valkey, mine, theirs):
    w = seeded.world
    scope = w.admin(getattr(w, mine))
    victim = seeded.ids[(theirs, "alice_booker")]
    victim_app = getattr(w, f"{theirs}_concierge")
    key = f"mem0:{victim_app.collection_name}:{victim}"
    before = raw_valkey.hgetall(key)
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=victim, text="hijacked")
    with pytest.raises(NotFound):
        services.memory_update(scope=scope, memory_id=victim, text="hijacked", app_id="concierge_app")
    with pytest.raises(NotFound):
        services.memory_delete(scope=scope, memory_id=victim)
    with pytest.raises(NotFound):
        services.memory_delete(scope=scope, memory_id=victim, app_id="concierge_app")
    assert raw_valkey.hgetall(key) == before
    assert history_for(victim_app.collection_name, [victim])[victim]

    # Their own update and delete work and touch nothing of the other tenant.
    own = seeded.ids[(mine, "alice_booker")]
    updated = services.memory_update(scope=scope, memory_id=own, text="Alice now prefers window seats")
    assert updated.memory == "Alice now prefers window seats" and updated.user_id == "alice"
    assert services.memory_delete(scope=scope, memory_id=own).deleted == 1
    assert raw_valkey.hgetall(key) == before


@pytest.mark.parametrize("mine,theirs", DIRECTIONS)
def test_delete_matching_stays_in_own_tenant(seeded, mine, theirs):
    w = seeded.world
    scope, other = w.admin(getattr(w, mine)), w.admin(getattr(w, theirs))
    theirs_before = listed(other)
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert result.deleted == len(expected(seeded, mine, user="alice"))
    assert result.remaining == 0
    assert listed(scope) == expected(seeded, mine, user="bob")
    assert listed(other) == theirs_before


def test_delete_matching_app_filter_narrows(seeded):
    w = seeded.world
    scope = w.admin(w.acme)
    result = services.memory_delete_matching(
        scope=scope, filters=filter_from_fields(user_id="alice", app_id="sports_portal")
    )
    assert result.deleted == 1 and set(result.per_app) == {"sports_portal"}
    assert listed(scope, user_id="alice") == expected(seeded, "acme", user="alice", app="concierge_app")


def test_user_filter_never_returns_another_users_memory(seeded):
    w = seeded.world
    for tenant in ("acme", "globex"):
        scope = w.admin(getattr(w, tenant))
        for user in ("alice", "bob"):
            page = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id=user))
            assert page.items and all(r.user_id == user for r in page.items)
            found = selectors.memory_search(scope=scope, query="seats", filters=filter_from_fields(user_id=user))
            assert found and all(r.user_id == user for r in found)
            exported = selectors.memory_export(scope=scope, filters=filter_from_fields(user_id=user))
            assert all(item["user_id"] == user for item in exported)


def test_end_user_scope_is_pinned_to_its_user(seeded, add):
    w = seeded.world
    alice = w.end_user(w.acme, "alice")
    assert listed(alice) == expected(seeded, "acme", user="alice")
    # A caller filter for someone else intersects with the pin: nothing, never bob.
    assert listed(alice, user_id="bob") == set()
    assert listed(alice, user_id="*") == expected(seeded, "acme", user="alice")
    assert listed(alice, agent_id="booker") == {seeded.ids[("acme", "alice_booker")]}
    assert selectors.memory_count(scope=alice, filters=filter_from_fields(user_id="bob")) == 0
    assert {r.id for r in selectors.memory_search(scope=alice, query="hotel", top_k=20)} == expected(
        seeded, "acme", user="alice"
    )
    assert {i["id"] for i in selectors.memory_export(scope=alice)} == expected(seeded, "acme", user="alice")
    counts = selectors.memory_counts(scope=alice)
    assert dict(counts.per_user) == {"alice": 3}
    bob_id = seeded.ids[("acme", "bob_booker")]
    globex_alice = seeded.ids[("globex", "alice_booker")]
    for memory_id in (bob_id, globex_alice):
        with pytest.raises(NotFound):
            selectors.memory_get(scope=alice, memory_id=memory_id)
        with pytest.raises(NotFound):
            services.memory_delete(scope=alice, memory_id=memory_id)
    with pytest.raises(PermissionDenied):
        services.memory_add(scope=alice, app_id="concierge_app", messages="x", user_id="alice")
    # Delete everything "unfiltered" as an end user: only their own memories go.
    result = services.memory_delete_matching(scope=alice, filters=EVERYTHING)
    assert result.deleted == 3 and result.remaining == 0
    assert listed(w.admin(w.acme)) == expected(seeded, "acme", user="bob")
    assert listed(w.admin(w.globex)) == tenant_ids(seeded, "globex")


def test_api_key_restricted_to_one_app(seeded):
    w = seeded.world
    scope = w.api_key(w.acme, w.acme_sports)
    assert [a.app_id for a in scope.apps] == ["sports_portal"]
    assert listed(scope) == expected(seeded, "acme", app="sports_portal")
    assert listed(scope, app_id="concierge_app") == set()
    with pytest.raises(NotFound):
        selectors.memory_get(scope=scope, memory_id=seeded.ids[("acme", "alice_booker")])
    with pytest.raises(NotFound):
        services.memory_add(scope=scope, app_id="concierge_app", messages="x", user_id="alice")
    unrestricted = w.api_key(w.globex)
    assert listed(unrestricted) == tenant_ids(seeded, "globex")


def test_offboarded_app_is_out_of_scope(seeded):
    w = seeded.world
    w.acme_sports.status = "offboarded"
    w.acme_sports.save()
    scope = w.admin(w.acme)
    assert listed(scope) == expected(seeded, "acme", app="concierge_app")
    with pytest.raises(NotFound):
        selectors.memory_get(scope=scope, memory_id=seeded.ids[("acme", "alice_coach")])
