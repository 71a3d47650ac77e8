from memadmin.memory import store


def store_status() -> dict:
    """Ping the store; raises StoreUnavailable when it cannot be reached."""
    with store.store_errors():
        info = store.client().info("server")
    return {"version": info.get("valkey_version") or info.get("redis_version"), "embedded": store.is_embedded()}
