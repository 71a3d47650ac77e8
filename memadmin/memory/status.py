import shutil
import threading
import time

from django.conf import settings

from memadmin.memory import store
from memadmin.memory.errors import StoreUnavailable

# Below this, the data dir is reported low: Valkey's next AOF rewrite or a SQLite checkpoint may not fit.
DISK_LOW_BYTES = 64 * 1024 * 1024


# A repeated state is said again after this long: an outage is a line a minute, not a line per request.
REPEAT_SECONDS = 60
_noted: dict[str, tuple[str, float]] = {}
_noted_lock = threading.Lock()


def note_state(log, topic: str, state: str, message: str) -> None:
    """Log ``message`` when ``topic`` (e.g. "store") enters ``state`` in this process, and again every
    REPEAT_SECONDS while it stays there. "ok" after something else is logged at INFO (recovered), a first
    "ok" not at all. A dead store with 8 threads in 4 workers answering 503 wrote 74 MB of log in 12 min."""
    now = time.monotonic()
    with _noted_lock:
        previous = _noted.get(topic)
        if previous is not None and previous[0] == state and now - previous[1] < REPEAT_SECONDS:
            return
        if previous is None and state == "ok":
            _noted[topic] = (state, now)
            return
        _noted[topic] = (state, now)
    if state == "ok":
        if previous[0] != "ok":
            log.info(message)
    else:
        log.warning(message)


def store_status() -> dict:
    """Ping the store and read its persistence state; raises StoreUnavailable when it cannot be reached.

    ``writes`` is "ok", or why the store refuses them: Valkey answers every write with MISCONF while its last
    AOF write or RDB save failed (a full disk, usually), and a replica is read-only."""
    with store.store_errors():
        info = store.client().info("everything")
    persistence = {
        "aof_last_write_status": info.get("aof_last_write_status"),
        "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
        "loading": bool(info.get("loading")),
    }
    writes = "ok"
    if "err" in (persistence["aof_last_write_status"], persistence["rdb_last_bgsave_status"]):
        writes = "refused: persistence failing"
    elif info.get("role") == "slave" and info.get("slave_read_only", 1):
        writes = "refused: read-only replica"
    elif (
        int(info.get("maxmemory") or 0)
        and int(info.get("used_memory") or 0) >= int(info["maxmemory"])
        and info.get("maxmemory_policy") == "noeviction"
    ):
        writes = "refused: out of memory"
    return {
        "version": info.get("valkey_version") or info.get("redis_version"),
        "embedded": store.is_embedded(),
        "persistence": persistence,
        "writes": writes,
    }


def disk_status() -> dict:
    """Free space where memadmin writes (Mem0's history, SQLite, exports, the embedded Valkey's AOF)."""
    usage = shutil.disk_usage(settings.DATA_DIR)
    free = usage.free
    return {
        "free_bytes": free,
        "free_percent": round(100 * free / usage.total, 1) if usage.total else 0.0,
        "low": free < DISK_LOW_BYTES,
    }


def other_stores_status() -> dict[str, str]:
    """ "ok" or "unreachable" for each store of MEMADMIN_STORES (the default one is store_status's)."""
    status = {}
    for name in store.store_names()[1:]:
        try:
            with store.store_errors():
                store.client(on=name).ping()
            status[name] = "ok"
        except StoreUnavailable:
            status[name] = "unreachable"
    return status
