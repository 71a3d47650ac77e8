"""Running a test with its tenant's apps on the default store and again on a second one (MEMADMIN_STORES).

A test opts in with `@on_both_stores`; the worlds of the API and job tests (tests/tenants/api/conftest.py,
tests/support/jobs.py) read the `store_kind` fixture and, for "second", put the tenant's apps there. When the
test ends, nothing of those apps may be on the default store: a read or write that ignored the app's place would
have left a key or an index there.
"""

import pytest

from memadmin.memory import store

STORE_KINDS = ("default", "second")
on_both_stores = pytest.mark.parametrize("store_kind", STORE_KINDS)


@pytest.fixture
def store_kind() -> str:
    """Where the world's tenant keeps its apps; "default" unless the test is marked `on_both_stores`."""
    return "default"


def place_tenant_apps(request, tenant, store_kind: str) -> None:
    """Put every app of `tenant` on the store `store_kind` names, and check at the end that the default store
    holds nothing of an app that lives on the second one."""
    if store_kind == "default":
        return
    from tenants.models import App

    request.getfixturevalue("two_stores")
    App.objects.filter(tenant=tenant).update(store=store_kind)

    def nothing_on_the_default_store():
        default = store.client(on=store.DEFAULT)
        for app in App.objects.filter(tenant=tenant, store=store_kind):
            stray = [k for k in default.scan_iter(match=f"{store.key_prefix(app.collection_name)}*", count=1000)]
            assert not stray, f"{app.app_id} lives on {store_kind!r} but {len(stray)} keys were written to default"
            indexes = {name.decode() for name in default.execute_command("FT._LIST")}
            assert app.collection_name not in indexes, f"{app.app_id}'s index was created on the default store"

    request.addfinalizer(nothing_on_the_default_store)


def app_client(app):
    """The raw client of the store `app` lives on (for assertions about what is really there)."""
    app.refresh_from_db()
    return store.client(on=app.app_ref().place.store)
