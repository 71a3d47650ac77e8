"""Scopes, roles, empty scopes, metadata that tries to carry identity, and hashes older Mem0 wrote."""

import dataclasses

import pytest

from memadmin.memory import selectors, services
from memadmin.memory.errors import NotFound, PermissionDenied, ValidationError
from memadmin.memory.filters import EVERYTHING, filter_from_fields, filter_from_mem0
from memadmin.memory.scope import (
    AppRef,
    Scope,
    scope_for_key,
    scope_for_link,
    scope_for_reader,
    scope_for_staff,
    scope_for_system,
)
from tenants.jobs.models import Job
from tenants.scoping import scope_for_job, scope_for_membership
from tests.factories import MembershipFactory, TenantFactory
from tests.memadmin.memory.rawhash import put

# --- construction and roles ------------------------------------------------------------


def test_scope_cannot_be_constructed_directly():
    with pytest.raises(TypeError):
        Scope(tenant_id=1, tenant_slug="acme", apps=(), role="admin", actor="me", actor_kind="staff")
    with pytest.raises(TypeError):
        Scope(1, "acme", (AppRef(1, "a", "c"),), "system", "me", "system", None, None, object())


def test_scopes_are_built_from_plain_values():
    """The memory service knows no tenants model: a scope is built from ids, a role, app refs and an actor."""
    apps = (AppRef(pk=1, app_id="a", collection="c"),)
    staff = scope_for_staff(tenant_id=7, tenant_slug="acme", apps=apps, role="support", actor="ann", ip="10.0.0.1")
    assert (staff.tenant_id, staff.tenant_slug, staff.apps, staff.actor_kind, staff.ip) == (
        7,
        "acme",
        apps,
        "staff",
        "10.0.0.1",
    )
    assert staff.can("delete") and not staff.can("manage_keys") and staff.user_id is None
    link = scope_for_link(tenant_id=7, tenant_slug="acme", apps=apps, user_id="alice")
    assert (link.role, link.actor, link.user_id) == ("enduser", "enduser:alice", "alice")
    key = scope_for_key(tenant_id=7, tenant_slug="acme", apps=(), key_name="ci")
    assert (key.role, key.actor, key.apps) == ("api", "key:ci", ())
    reader = scope_for_reader(tenant_id=7, tenant_slug="acme", apps=apps, actor="webhook:w")
    assert reader.can("read") and not reader.can("delete")
    assert scope_for_system(tenant_id=7, tenant_slug="acme", apps=apps, actor="cron").can("offboard")


def test_scope_cannot_be_derived_with_dataclasses_replace(world):
    scope = world.end_user(world.acme, "alice")
    with pytest.raises(TypeError):
        dataclasses.replace(scope, user_id=None)
    with pytest.raises(TypeError):
        dataclasses.replace(world.scope(world.acme_viewer), role="admin")


def test_scope_is_immutable(world):
    scope = world.end_user(world.acme, "alice")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.user_id = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.apps = ()


def test_viewer_can_read_but_not_write_or_delete(world, add):
    record = add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    viewer = world.scope(world.acme_viewer)
    assert selectors.memory_get(scope=viewer, memory_id=record.id).id == record.id
    assert selectors.memory_list(scope=viewer).total == 1
    denied = [
        lambda: services.memory_add(scope=viewer, app_id="concierge_app", messages="x", user_id="alice"),
        lambda: services.memory_update(scope=viewer, memory_id=record.id, text="changed"),
        lambda: services.memory_delete(scope=viewer, memory_id=record.id),
        lambda: services.memory_delete_matching(scope=viewer, filters=filter_from_fields(user_id="alice")),
        lambda: list(selectors.memory_export(scope=viewer, filters=filter_from_fields(user_id="alice"))),
    ]
    for call in denied:
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.status == 403
    assert selectors.memory_get(scope=viewer, memory_id=record.id).memory == "Alice likes jazz"


def test_support_can_delete_and_export_a_user_but_not_write_or_export_the_app(world, add):
    record = add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    support = world.scope(world.acme_support)
    with pytest.raises(PermissionDenied):
        services.memory_add(scope=support, app_id="concierge_app", messages="x", user_id="alice")
    with pytest.raises(PermissionDenied):
        services.memory_update(scope=support, memory_id=record.id, text="changed")
    with pytest.raises(PermissionDenied):
        list(selectors.memory_export(scope=support))
    assert [i["id"] for i in selectors.memory_export(scope=support, filters=filter_from_fields(user_id="alice"))] == [
        record.id
    ]
    assert services.memory_delete(scope=support, memory_id=record.id).deleted == 1


def test_outsider_role_checks_never_reveal_existence(world, add):
    # A viewer of the other tenant gets NotFound, not PermissionDenied, for a memory it cannot see.
    record = add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    with pytest.raises(NotFound):
        selectors.memory_get(scope=world.scope(world.globex_viewer), memory_id=record.id)


def test_job_scope_is_limited_to_its_apps(world, add):
    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    sports = add(world.admin(world.acme), "sports_portal", "alice", "Alice runs")
    job = Job.objects.create(kind="erase_user", tenant=world.acme, requested_by="admin")
    scope = scope_for_job(job, apps=[world.acme_sports])
    assert [r.id for r in selectors.memory_list(scope=scope).items] == [sports.id]


# --- an empty scope is never an unfiltered query --------------------------------------------


def test_scope_with_no_apps_sees_nothing(world, add):
    for tenant in (world.acme, world.globex):
        add(world.admin(tenant), "concierge_app", "alice", "Alice likes jazz")
    empty_tenant = TenantFactory(slug="empty")
    scope = scope_for_membership(MembershipFactory(tenant=empty_tenant, role="admin"))
    assert scope.apps == ()
    page = selectors.memory_list(scope=scope)
    assert (page.items, page.total) == ([], 0)
    assert selectors.memory_search(scope=scope, query="jazz") == []
    assert selectors.memory_count(scope=scope) == 0
    assert selectors.memory_counts(scope=scope).total == 0
    assert list(selectors.memory_export(scope=scope)) == []
    assert selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="alice")).total == 0
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert result.deleted == 0 and result.per_app == {}
    assert selectors.memory_count(scope=world.admin(world.acme)) == 1
    assert selectors.memory_count(scope=world.admin(world.globex)) == 1


def test_scope_whose_apps_are_all_offboarded_sees_nothing(world, add):
    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    world.acme.apps.update(status="offboarded")
    scope = world.admin(world.acme)
    assert scope.apps == ()
    assert selectors.memory_list(scope=scope).total == 0
    assert selectors.memory_search(scope=scope, query="jazz") == []


def test_filters_that_match_no_app_are_empty_not_unfiltered(world, add):
    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    scope = world.admin(world.acme)
    for filters in (
        filter_from_fields(app_id="nope"),
        filter_from_mem0({"app_id": {"in": ["nope", "other_app"]}}),
        filter_from_mem0({"AND": [{"app_id": "concierge_app"}, {"app_id": "sports_portal"}]}),
    ):
        assert selectors.memory_list(scope=scope, filters=filters).total == 0
        assert selectors.memory_search(scope=scope, query="jazz", filters=filters) == []
        assert list(selectors.memory_export(scope=scope, filters=filters)) == []
        result = services.memory_delete_matching(scope=scope, filters=filters)
        assert result.deleted == 0
    assert selectors.memory_count(scope=scope) == 1


def test_delete_matching_without_filters_is_refused_for_staff(world, add):
    add(world.admin(world.acme), "concierge_app", "alice", "Alice likes jazz")
    for membership in (world.acme_admin, world.acme_support):
        with pytest.raises(ValidationError):
            services.memory_delete_matching(scope=world.scope(membership), filters=EVERYTHING)
        with pytest.raises(ValidationError):
            services.memory_delete_matching(scope=world.scope(membership), filters=filter_from_mem0({}))
    assert selectors.memory_count(scope=world.admin(world.acme)) == 1


# --- metadata never carries identity ---------------------------------------------------------


@pytest.mark.parametrize("key", ["user_id", "agent_id", "run_id", "app_id"])
def test_service_rejects_identity_in_metadata(world, add, key, raw_valkey):
    scope = world.admin(world.acme)
    with pytest.raises(ValidationError) as caught:
        services.memory_add(
            scope=scope, app_id="concierge_app", messages="x", user_id="alice", metadata={key: "bob", "ok": 1}
        )
    assert caught.value.field == "metadata"
    assert selectors.memory_count(scope=scope) == 0
    record = add(scope, "concierge_app", "alice", "Alice likes jazz")
    with pytest.raises(ValidationError):
        services.memory_update(scope=scope, memory_id=record.id, text="changed", metadata={key: "bob"})
    assert selectors.memory_get(scope=scope, memory_id=record.id).memory == "Alice likes jazz"


def test_identity_in_stored_metadata_is_ignored(world, raw_valkey):
    """An agent wrote straight into Valkey with user_id in its metadata JSON: the TAG decides, always."""
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    smuggled = {"user_id": "bob", "agent_id": "evil", "run_id": "r9", "app_id": "sports_portal"}
    memory_id = put(raw_valkey, world.acme_concierge.collection_name, user_id="alice", metadata=smuggled)

    for user, expected in (("alice", [memory_id]), ("bob", [])):
        assert [r.id for r in selectors.memory_list(scope=scope, filters=filter_from_fields(user_id=user)).items] == (
            expected
        )
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(agent_id="evil")) == 0
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(app_id="sports_portal")) == 0
    record = selectors.memory_get(scope=scope, memory_id=memory_id)
    assert (record.user_id, record.agent_id, record.run_id, record.app_id) == ("alice", None, None, "concierge_app")
    exported = list(selectors.memory_export(scope=scope))
    assert [(i["user_id"], i["agent_id"], i["app_id"]) for i in exported] == [("alice", None, "concierge_app")]
    assert dict(selectors.memory_counts(scope=scope).per_user) == {"alice": 1}
    bob = world.end_user(world.acme, "bob")
    assert selectors.memory_list(scope=bob).total == 0
    with pytest.raises(NotFound):
        selectors.memory_get(scope=bob, memory_id=memory_id)
    assert selectors.memory_list(scope=world.end_user(world.acme, "alice")).total == 1


def test_update_never_moves_a_memory_into_the_scope_its_metadata_names(world, raw_valkey):
    # Mem0's update rebuilds the hash from a payload in which metadata overrides the TAGs (mem0 #6655).
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    collection = world.acme_concierge.collection_name
    memory_id = put(raw_valkey, collection, user_id="alice", metadata={"user_id": "bob", "agent_id": "evil", "k": 1})
    updated = services.memory_update(scope=scope, memory_id=memory_id, text="Alice likes jazz now")
    assert (updated.user_id, updated.agent_id, updated.memory) == ("alice", None, "Alice likes jazz now")
    assert raw_valkey.hget(f"mem0:{collection}:{memory_id}", "user_id") == b"alice"
    assert not raw_valkey.hexists(f"mem0:{collection}:{memory_id}", "agent_id")
    assert updated.metadata == {"k": 1}
    assert selectors.memory_list(scope=world.end_user(world.acme, "bob")).total == 0


# --- hashes older Mem0 versions wrote ---------------------------------------------------------


def test_hash_missing_optional_fields_lists_gets_and_exports(world, raw_valkey):
    scope = world.admin(world.acme)
    selectors.memory_count(scope=scope)
    collection = world.acme_concierge.collection_name
    bare = put(raw_valkey, collection, user_id="alice", text="old memory")  # no agent/run/updated_at/metadata
    fields = raw_valkey.hgetall(f"mem0:{collection}:{bare}")
    assert set(fields) == {b"memory_id", b"hash", b"memory", b"created_at", b"embedding", b"user_id"}
    # Older still: no memory_id field and no created_at.
    raw_valkey.hset(
        f"mem0:{collection}:ancient",
        mapping={"memory": "ancient memory", "user_id": "alice", "hash": "h", "embedding": fields[b"embedding"]},
    )
    page = selectors.memory_list(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert page.total == 2
    assert [r.id for r in page.items] == [bare, "ancient"]  # no created_at sorts last
    record = selectors.memory_get(scope=scope, memory_id=bare)
    assert (record.memory, record.agent_id, record.run_id, record.updated_at, record.metadata) == (
        "old memory",
        None,
        None,
        None,
        {},
    )
    ancient = selectors.memory_get(scope=scope, memory_id="ancient")
    assert (ancient.id, ancient.memory, ancient.created_at) == ("ancient", "ancient memory", None)
    exported = {item["id"]: item for item in selectors.memory_export(scope=scope)}
    assert set(exported) == {bare, "ancient"}
    assert exported[bare]["metadata"] == {} and exported[bare]["updated_at"] is None
    assert exported[bare]["history"] == []
    assert selectors.memory_history(scope=scope, memory_id=bare) == []
    found = selectors.memory_search(scope=scope, query="old memory", filters=filter_from_fields(user_id="alice"))
    assert {r.id for r in found} == {bare, "ancient"}
    counts = selectors.memory_counts(scope=scope)
    assert counts.total == 2 and counts.per_agent == [] and dict(counts.per_user) == {"alice": 2}
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(agent_id="*")) == 0
    result = services.memory_delete_matching(scope=scope, filters=filter_from_fields(user_id="alice"))
    assert (result.deleted, result.remaining) == (2, 0)
