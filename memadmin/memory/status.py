from memadmin.memory import store
from memadmin.memory.errors import StoreUnavailable


def store_status() -> dict:
    """Ping the store; raises StoreUnavailable when it cannot be reached."""
    with store.store_errors():
        info = store.client().info("server")
    return {"version": info.get("valkey_version") or info.get("redis_version"), "embedded": store.is_embedded()}


def other_stores_status() -> dict[str, str]:
    """"ok" or "unreachable" for each store of MEMADMIN_STORES (the default one is store_status's)."""
    status = {}
    for name in store.store_names()[1:]:
        try:
            with store.store_errors():
                store.client(on=name).ping()
            status[name] = "ok"
        except StoreUnavailable:
            status[name] = "unreachable"
    return status
