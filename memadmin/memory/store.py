"""Process-wide handles on Valkey and Mem0: the only module that imports either.

One connection pool per store, one embedder and one Mem0 ``Memory`` per app
collection per process. Indexes are index.py's: it creates each app's index
before Mem0 sees the collection (Mem0's own existence check looks for "not
found" in the error text and this server says "Unknown index name").

Stores: the embedded server or VALKEY_URL is the store called "default";
MEMADMIN_STORES names more. Each app lives on one store. Where an app lives is
handed down with every call, never looked up: the AppRef (built from the app's
row for each request or job) gives its ``Place`` (store, collection), every
engine function takes that place, and ``client(on=place.store)`` answers that
store's pool. No table here remembers where a collection lives, so a function
called before any scope of the app was built still reaches the right server.
"""

from __future__ import annotations

import copy
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError

from memadmin.memory import embedders
from memadmin.memory.errors import StoreRefusesWrites, StoreUnavailable, disk_full
from memadmin.memory.guarded import guarded_store_class

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import valkey  # noqa: E402
from valkey import exceptions as vexc  # noqa: E402

logger = logging.getLogger("memadmin.store")

DEFAULT = "default"
# Set by gunicorn's master for the web workers it forks (memadmin/gunicorn_conf.py), never by hand.

_lock = threading.RLock()
_clients: dict[str, valkey.Valkey] = {}
_memories: dict[tuple[str, str], object] = {}  # (store, collection) -> Mem0 Memory: a moved app gets a fresh one
_template = None
_generation = 0


@dataclass(frozen=True)
class Place:
    """Where an app's memories live: the store (a Valkey server, by name) and the collection on it."""

    store: str
    collection: str


def valkey_url() -> str:
    """The default store's URL: VALKEY_URL, or the embedded server (started if it is not running)."""
    if settings.VALKEY_URL:
        return settings.VALKEY_URL
    from memadmin.memory.embedded import EmbeddedServer

    return EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT).ensure().url


def store_names() -> list[str]:
    return [DEFAULT, *settings.MEMADMIN_STORES]


def store_url(name: str = DEFAULT) -> str:
    if name == DEFAULT:
        return valkey_url()
    try:
        return settings.MEMADMIN_STORES[name]
    except KeyError:
        # An app pinned to a store that was since taken out of MEMADMIN_STORES: its data is unreachable.
        raise StoreUnavailable(f"The memory store {name!r} is not configured (MEMADMIN_STORES).") from None


def public_url(name: str = DEFAULT) -> str:
    """The store's URL without its password: what a tenant's Mem0 OSS agents point at (they have their own)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(store_url(name))
    if parts.password is None:
        return urlunsplit(parts)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def refusal(exc: BaseException) -> StoreRefusesWrites | None:
    """The write refusal ``exc`` is, named for the person who sees the 503; None when it is something else.

    Valkey refuses every write while it cannot persist (MISCONF: its AOF or RDB write failed, usually a full
    disk), above maxmemory (OOM) and on a replica (READONLY); a full disk is errors.disk_full's."""
    text = str(exc)
    if isinstance(exc, vexc.ResponseError):
        if text.startswith("MISCONF") or "MISCONF" in text[:40]:
            return StoreRefusesWrites(
                f"The memory store refuses writes: Valkey cannot save to disk (is the disk full?): {text}",
                cause="persistence_failing",
            )
        if isinstance(exc, vexc.OutOfMemoryError) or text.startswith("OOM"):
            return StoreRefusesWrites(
                f"The memory store refuses writes: Valkey is out of memory: {text}", cause="out_of_memory"
            )
        if isinstance(exc, vexc.ReadOnlyError) or text.startswith("READONLY"):
            return StoreRefusesWrites(
                f"The memory store refuses writes: it is a read-only replica: {text}", cause="read_only"
            )
        return None
    return disk_full(exc)


@contextmanager
def store_errors():
    """Turn every way of not reaching Valkey into StoreUnavailable, and every refused write (MISCONF, OOM,
    READONLY, a full disk) into StoreRefusesWrites."""
    try:
        yield
    except (vexc.ConnectionError, vexc.TimeoutError, vexc.BusyLoadingError, ConnectionError) as exc:
        raise StoreUnavailable(f"The memory store is unreachable: {exc}") from exc
    except vexc.ResponseError as exc:
        refused = refusal(exc)
        if refused is not None:
            raise refused from exc
        if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
            raise StoreUnavailable(f"The memory store is not ready: {exc}") from exc
        if "timeout limit" in str(exc).lower():
            raise StoreUnavailable(f"The memory store timed out on this query; narrow the filters: {exc}") from exc
        raise
    except (sqlite3.OperationalError, DatabaseError, OSError) as exc:
        refused = refusal(exc)
        if refused is not None:
            raise refused from exc
        raise


_inserted = threading.local()


def _recording(insert):
    """Mem0's vector insert, noting the ids it stored for all_or_nothing()."""

    def recorded(vectors, payloads=None, ids=None):
        insert(vectors=vectors, payloads=payloads, ids=ids)
        log = getattr(_inserted, "ids", None)
        if log is not None:
            log.extend(ids or [])

    return recorded


@contextmanager
def all_or_nothing(place: Place):
    """store_errors() for a Mem0 write that must not half-succeed. Mem0 stores the memory in Valkey, then its
    history row in SQLite: on a full disk the second fails, the caller answers 503, and a client that retries
    would store the memory twice. So the memories this write stored are taken back before the error goes up."""
    _inserted.ids = []
    try:
        with store_errors():
            yield
    except StoreUnavailable as exc:
        stored = _inserted.ids
        if stored:
            try:
                prefix = key_prefix(place.collection)
                client(on=place.store).unlink(*(f"{prefix}{memory_id}" for memory_id in stored))
            except vexc.ValkeyError as undo:
                logger.error(
                    "A failed write left memories %s in %s (%s); they could not be taken back: %s",
                    stored,
                    place.collection,
                    exc.message,
                    undo,
                )
                exc.message += f" Memories stored before the failure could not be removed: {', '.join(stored)}."
            else:
                logger.warning(
                    "A write to %s failed (%s); took back the %s memories it had stored.",
                    place.collection,
                    exc.message,
                    len(stored),
                )
        raise
    finally:
        _inserted.ids = None


def client(*, on: str = DEFAULT) -> valkey.Valkey:
    """The pool of the store ``on`` names (an app's: ``client(on=place.store)``)."""
    name = on
    pool = _clients.get(name)
    if pool is None:
        with _lock:
            pool = _clients.get(name)
            if pool is None:
                try:
                    url = store_url(name)
                except StoreUnavailable:
                    raise
                except Exception as exc:  # the embedded server could not start
                    raise StoreUnavailable(f"The embedded memory store could not start: {exc}") from exc
                pool = valkey.Valkey.from_url(
                    url,
                    socket_timeout=settings.MEMADMIN_VALKEY_TIMEOUT,
                    socket_connect_timeout=min(2, settings.MEMADMIN_VALKEY_TIMEOUT),
                    health_check_interval=30,
                )
                _clients[name] = pool
    return pool


def free_memory(name: str) -> int | None:
    """Bytes the store can still take (INFO memory: maxmemory, or the machine's memory, minus used), or None
    when it cannot be asked."""
    try:
        with store_errors():
            info = client(on=name).info("memory")
    except (StoreUnavailable, vexc.ValkeyError):
        return None
    limit = int(info.get("maxmemory") or 0) or int(info.get("total_system_memory") or 0)
    return limit - int(info.get("used_memory") or 0)


def store_for_new_app() -> str:
    """Where a new app goes: the store with the most free memory (one store: no question asked)."""
    names = store_names()
    if len(names) == 1:
        return DEFAULT
    free = {name: free_memory(name) for name in names}
    reachable = {name: value for name, value in free.items() if value is not None}
    return max(reachable, key=lambda name: (reachable[name], name == DEFAULT)) if reachable else DEFAULT


def reset() -> None:
    """Forget cached connections and indexes (tests, and after the server restarted)."""
    global _template, _generation
    with _lock:
        for pool in _clients.values():
            pool.close()
        _clients.clear()
        _template = None
        _memories.clear()
        _generation += 1


def generation() -> int:
    """Bumped by reset(): what other modules cached about this server is stale when it changes."""
    return _generation


def key_prefix(collection: str) -> str:
    return f"mem0:{collection}:"


def offboarding_prefix(collection: str) -> str:
    """Prefix of the empty stand-in index an offboarding puts in place of the app's (see bulk.py)."""
    return f"{key_prefix(collection)}__offboarding__:"


def drop_memory(collection: str) -> None:
    """Close and forget the cached Mem0 Memories of a collection, on whichever store (its index or history file
    is going: the history file is the collection's, whatever store its hashes are on)."""
    with _lock:
        handles = [_memories.pop(key) for key in [key for key in _memories if key[1] == collection]]
    for memory in handles:
        memory.db.close()


# --- Mem0 ---------------------------------------------------------------------


def history_db_path(collection: str) -> Path:
    directory = Path(settings.DATA_DIR) / "history"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{collection}.sqlite3"


def mem0_config(place: Place) -> dict:
    return {
        "vector_store": {
            "provider": "valkey",
            "config": {
                "valkey_url": store_url(place.store),
                "collection_name": place.collection,
                "embedding_model_dims": settings.MEMADMIN_EMBEDDER_DIMS,
                "index_type": settings.MEMADMIN_INDEX_ALGORITHM,
            },
        },
        "embedder": embedders.embedder_config(),
        "llm": embedders.llm_config(),
        "history_db_path": str(history_db_path(place.collection)),
    }


def memory_for(place: Place):
    """The cached Mem0 Memory of one collection on its store; all of them share one embedder and the store's pool.

    Call it through index.mem0(), which makes sure the collection's index exists first."""
    global _template
    key = (place.store, place.collection)
    memory = _memories.get(key)
    if memory is not None:
        return memory
    collection = place.collection
    with _lock:
        memory = _memories.get(key)
        if memory is not None:
            return memory
        # A handle of this collection on another store is one the app left (it moved): its history file is
        # this one's, so it is closed rather than kept open beside the new handle.
        drop_memory(collection)
        from mem0 import Memory
        from mem0.memory.storage import SQLiteManager
        from mem0.utils.factory import VectorStoreFactory

        with store_errors():
            if _template is None:
                config = mem0_config(place)
                # Mem0's constructor builds an embedder from the config, and its huggingface one imports
                # torch and loads the model a second time. It gets a client that is never called (as for
                # the LLM when none is configured), is handed the process's one embedder, and keeps the
                # real config for anything that reads it.
                real = config["embedder"]
                config["embedder"] = {
                    "provider": "openai",
                    "config": {
                        "api_key": "unused-replaced-by-memadmin",
                        "embedding_dims": settings.MEMADMIN_EMBEDDER_DIMS,
                    },
                }
                memory = Memory.from_config(config)
                memory.config.embedder = type(memory.config.embedder)(**real)
                memory.embedding_model = embedders.embedder()
                _template = memory
            else:
                # A shallow copy shares the embedder (and its loaded model) and the LLM client.
                memory = copy.copy(_template)
                memory.config = _template.config.model_copy(deep=True)
                memory.config.vector_store.config.collection_name = collection
                # Mem0's constructor checks the index on this URL: the collection's own store, not the template's.
                memory.config.vector_store.config.valkey_url = store_url(place.store)
                memory.config.history_db_path = str(history_db_path(collection))
                memory.vector_store = VectorStoreFactory.create("valkey", memory.config.vector_store.config)
                memory.db = SQLiteManager(memory.config.history_db_path)
                memory.collection_name = collection
                memory._entity_store = None
        memory.vector_store.client.close()
        memory.vector_store.client = client(on=place.store)
        # Mem0 built the store (its constructor checks the index); only its update changes, so the instance
        # takes the subclass rather than being built a second time.
        memory.vector_store.__class__ = guarded_store_class()
        memory.vector_store.insert = _recording(memory.vector_store.insert)
        _tune_history(memory.db.connection)
        _memories[key] = memory
        return memory


def _tune_history(connection) -> None:
    """Mem0 opens a collection's history file in SQLite's default rollback-journal mode: each add commits
    with fsyncs while holding the file's lock, and the other web workers' adds wait on SQLite's busy handler,
    which sleeps 1-100 ms at a time. WAL with synchronous=NORMAL, like our own database: a commit no longer
    fsyncs (a power cut can lose the last moment of history rows, never corrupt the file) and readers no
    longer block the writer. The mode is stored in the file: every later connection uses it too."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    # Mem0 deletes too (it trims a session's stored messages): what it deletes is overwritten, not left in a
    # free page for the file to keep (memadmin/memory/purge.py).
    connection.execute("PRAGMA secure_delete=ON")


def is_embedded() -> bool:
    return not settings.VALKEY_URL


# --- registering a collection --------------------------------------------------------


def claim_key(collection: str) -> str:
    """Where whoever runs a Mem0 OSS collection proves it, before a tenant registers it as an app."""
    return f"memadmin:claim:{collection}"


def claim_read(place: Place) -> str | None:
    """The claim set on the store the collection is on: whoever runs its agents can write there."""
    with store_errors():
        value = client(on=place.store).get(claim_key(place.collection))
    return value.decode("utf-8", "replace") if value is not None else None


def claim_clear(place: Place) -> None:
    with store_errors():
        client(on=place.store).delete(claim_key(place.collection))
