"""The index layer: every FT.* command memadmin sends is built here, and nowhere else.

One search index per app collection (Mem0's schema has no app_id field, so apps are kept
apart physically, a collection each: docs/architecture.md). This module creates and
adopts those indexes and reports their health (FT.INFO); index_queries.py, the
other half of the layer, answers the queries the selectors and the deletion
engine need: search, count, grouped counts, distinct values and cursor batches.
Callers pass a rendered filter query (filters.render) and get plain Python
values back; nobody else parses replies. Every function that talks to a store takes the app's
``Place`` (store, collection): where the app lives is handed down, never looked up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from valkey import exceptions as vexc

from memadmin.memory import store
from memadmin.memory.errors import Conflict
from memadmin.memory.ids import TAG_SEPARATOR
from memadmin.memory.store import Place

logger = logging.getLogger("memadmin.index")

RETURN_FIELDS = ("memory_id", "hash", "memory", "user_id", "agent_id", "run_id", "metadata", "created_at", "updated_at")
MIN_VALKEY_SEARCH = 10201  # valkey-search 1.2.1: non-vector FT.SEARCH, SORTBY, tag escapes

_lock = threading.RLock()
_indexed: set[tuple[str, str]] = set()  # (store, collection): an app that moved is checked again on its new store
_generation = -1


def decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs(items) -> dict:
    """A flat [name, value, name, value...] reply as a dict keyed by str."""
    items = list(items)
    return {decode(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def memory_id_of(collection: str, key) -> str:
    """The memory id in a key: everything after the collection's prefix (an id may hold ":" itself)."""
    return decode(key).removeprefix(store.key_prefix(collection))


def missing_index(exc: Exception) -> bool:
    text = str(exc).lower()
    return "unknown index" in text or "no such index" in text


# --- creating, adopting, inspecting ------------------------------------------------


def schema(
    collection: str, *, dims: int | None = None, algorithm: str | None = None, prefix: str | None = None
) -> list[str]:
    """FT.CREATE for one collection with Mem0's fields, and two deliberate differences: TAGs are
    CASESENSITIVE and split only on U+001F (ids are exact and never split), and the PREFIX ends with ':'
    so collection "app" never indexes the keys of collection "app2"."""
    dims = dims or settings.MEMADMIN_EMBEDDER_DIMS
    algorithm = algorithm or settings.MEMADMIN_INDEX_ALGORITHM
    command = ["FT.CREATE", collection, "ON", "HASH", "PREFIX", "1", prefix or store.key_prefix(collection), "SCHEMA"]
    for name in ("memory_id", "hash", "agent_id", "run_id", "user_id"):
        command += [name, "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    command += ["memory", "TEXT", "metadata", "TAG", "SEPARATOR", TAG_SEPARATOR, "CASESENSITIVE"]
    command += ["created_at", "NUMERIC", "SORTABLE", "updated_at", "NUMERIC", "SORTABLE"]
    if algorithm == "flat":
        vector = ["FLAT", "6", "TYPE", "FLOAT32", "DIM", str(dims), "DISTANCE_METRIC", "COSINE"]
    else:
        vector = [
            "HNSW",
            "12",
            "TYPE",
            "FLOAT32",
            "DIM",
            str(dims),
            "DISTANCE_METRIC",
            "COSINE",
            "M",
            "16",
            "EF_CONSTRUCTION",
            "200",
            "EF_RUNTIME",
            "10",
        ]
    return command + ["embedding", "VECTOR", *vector]


def create(place: Place, *, dims: int | None = None, algorithm: str | None = None, prefix: str | None = None) -> None:
    """FT.CREATE. A new index's counters (documents, failures, document ids) start again from 0, so what
    was measured on the old one (its health, its creation count) can no longer vouch for it."""
    collection = place.collection
    with store.store_errors():
        client = store.client(on=place.store)
        client.execute_command(*schema(collection, dims=dims, algorithm=algorithm, prefix=prefix))
        client.delete(health_key(collection), _created_key(collection))


def drop(place: Place) -> None:
    """Drop the index, never the hashes (no DD); an index already gone is fine (a killed job's retry)."""
    with store.store_errors():
        try:
            store.client(on=place.store).execute_command("FT.DROPINDEX", place.collection)
        except vexc.ResponseError as exc:
            if not missing_index(exc):
                raise


def info(place: Place) -> dict | None:
    """FT.INFO as a dict, or None when there is no such index."""
    with store.store_errors():
        try:
            return pairs(store.client(on=place.store).execute_command("FT.INFO", place.collection))
        except vexc.ResponseError as exc:
            if missing_index(exc):
                return None
            raise


def prefixes(details: dict) -> list[str]:
    return [decode(p) for p in pairs(details.get("index_definition", [])).get("prefixes", [])]


def text_type(details: dict) -> str | None:
    """The type of the attribute ``memory`` (the memory's text), or None when the index has no such attribute.
    Mem0 indexes it as TEXT; Mem0's Valkey store before mem0 #5006 made it a TAG."""
    for attribute in details.get("attributes", []):
        fields = pairs(attribute)
        if decode(fields.get("attribute", fields.get("identifier", b""))) == "memory":
            return decode(fields.get("type", b"")).upper()
    return None


def is_ours(details: dict, collection: str) -> bool:
    if prefixes(details) != [store.key_prefix(collection)]:
        return False
    if text_type(details) not in (None, "TEXT"):
        return False  # a TAG over whole texts: no word in them can be searched
    for attribute in details.get("attributes", []):
        flags = [decode(a) for a in attribute]
        if "TAG" in flags and ("CASESENSITIVE" not in flags or TAG_SEPARATOR not in flags):
            return False
    return True


def _vector_shape(details: dict) -> tuple[int | None, str]:
    for attribute in details.get("attributes", []):
        flags = [decode(a) for a in attribute]
        if "VECTOR" in flags:
            upper = [f.upper() for f in flags]
            dims = int(flags[upper.index("DIM") + 1]) if "DIM" in upper else None
            return dims, ("flat" if "FLAT" in upper else "hnsw")
    return None, settings.MEMADMIN_INDEX_ALGORITHM


def wait_indexed(place: Place, timeout: float = 600.0) -> None:
    """Until the index's background scan (after FT.CREATE over existing keys) has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = info(place) or {}
        if decode(details.get("indexing", b"0")) in ("0", "0.0"):
            return
        time.sleep(0.1)


def check_search_module(*, on: str = store.DEFAULT) -> None:
    modules = store.client(on=on).execute_command("MODULE", "LIST")
    for module in modules:
        fields = pairs(module)
        if decode(fields.get("name", "")).lower() in ("search", "ft"):
            path = decode(fields.get("path", ""))
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
    # v2: the text is searchable by its words (hybrid search), so an index verified under v1 is checked once
    # more for its TEXT attribute ``memory`` and given one if it has none (add_text).
    return f"v2:{settings.MEMADMIN_EMBEDDER_DIMS}".encode()


def _fresh() -> None:
    # store.reset() (tests, a restarted server) invalidates what this process believed about indexes.
    global _generation
    if _generation != store.generation():
        _indexed.clear()
        _generation = store.generation()


def ensure(place: Place) -> None:
    """Create the app's index, or adopt one Mem0 created with its case-insensitive, comma-split TAGs.

    A verified index leaves a marker key, so other processes skip FT.INFO (~200 ms at 1M memories).
    """
    _fresh()
    collection = place.collection
    key = (place.store, collection)
    if key in _indexed:
        return
    with _lock, store.store_errors():
        if key in _indexed:
            return
        client = store.client(on=place.store)
        if client.get(_marker(collection)) == _signature():
            _indexed.add(key)
            return
        check_search_module(on=place.store)
        details = info(place)
        dims = settings.MEMADMIN_EMBEDDER_DIMS
        if details is None:
            try:
                create(place)
            except vexc.ResponseError as exc:
                # Another process (web workers writing a new app's first memories at once) created it
                # between our FT.INFO and FT.CREATE: check theirs like any index found.
                if "already exists" not in str(exc).lower():
                    raise
                details = info(place)
            else:
                # FT.CREATE reads the keys already under the prefix in the background; until it has, the
                # index is "indexing" and cannot vouch for a count (a brand-new prefix takes milliseconds).
                wait_indexed(place, timeout=30)
                _record_created(place)
        if details is None:
            pass  # made by this process just now
        elif prefixes(details) == [store.offboarding_prefix(collection)]:
            _indexed.add(key)  # an offboarding is deleting the keys: its stand-in answers "0 memories"
            return
        elif not is_ours(details, collection):
            existing_dims, algorithm = _vector_shape(details)
            if existing_dims and existing_dims != dims:
                raise Conflict(
                    f"Collection {collection} holds {existing_dims}-dimension vectors but the embedder makes {dims}: "
                    "set MEMADMIN_EMBEDDER_* to the model its agents use."
                )
            logger.warning("Re-indexing collection %s with case-sensitive, unsplittable TAGs.", collection)
            # Dropping an index without DD keeps the hashes; the new index re-reads them.
            drop(place)
            create(place, dims=dims, algorithm=algorithm)
            wait_indexed(place)
            _record_created(place)
        else:
            existing_dims, _ = _vector_shape(details)
            if existing_dims and existing_dims != dims:
                raise Conflict(f"Collection {collection} holds {existing_dims}-dimension vectors, not {dims}.")
            if text_type(details) is None:
                add_text(place)
        client.set(_marker(collection), _signature())
        _indexed.add(key)


def add_text(place: Place) -> None:
    """Give an index without it the TEXT attribute ``memory``, in place (FT.ALTER): the engine reads the hashes
    already there again in the background while queries go on being answered (no drop, no reload). Until it
    has, keyword matches are partial and the index reports "indexing", so deletions wait for a healthy index
    (services.memory_delete_matching defers them to a job) rather than trust its count."""
    collection = place.collection
    logger.warning("Adding the TEXT attribute memory to the index of collection %s (keyword search).", collection)
    with store.store_errors():
        try:
            store.client(on=place.store).execute_command("FT.ALTER", collection, "SCHEMA", "ADD", "memory", "TEXT")
        except vexc.ResponseError as exc:
            # An engine without FT.ALTER or full-text fields: everything but the words' bonus still works, so
            # the app stays usable and the log says why its searches rank by similarity alone.
            logger.warning("Collection %s keeps an index without full text: %s", collection, exc)


def health_key(collection: str) -> str:
    """The Valkey hash where the consistency monitor keeps an app's health (memadmin/memory/consistency.py)."""
    return f"memadmin:health:{collection}"


def _created_key(collection: str) -> str:
    return f"memadmin:index-created:{collection}"


def _record_created(place: Place) -> None:
    """The count an index made itself: FT.CREATE's own scan read every key under the prefix, so once it
    has finished, documents + failures are the keys there were. It stands in for a consistency check
    until the monitor's first pass (an index someone else made, e.g. with SKIPINITIALSCAN, has none)."""
    details = inspect(place)
    if details.exists and not details.indexing:
        with store.store_errors():
            store.client(on=place.store).set(
                _created_key(place.collection),
                json.dumps(
                    {
                        "at": datetime.now(UTC).isoformat(),
                        "keys": details.num_docs + details.failures,
                        "docs": details.num_docs,
                    }
                ),
            )


def created_baseline(place: Place) -> dict | None:
    """{"at", "keys"} when this index was made by ensure() and its initial scan had finished, else None."""
    with store.store_errors():
        raw = store.client(on=place.store).get(_created_key(place.collection))
    return json.loads(raw) if raw else None


def forget(place: Place) -> None:
    """The index was dropped or replaced: re-check it before the next query, and close Mem0's handle."""
    collection = place.collection
    with _lock:
        _indexed.discard((place.store, collection))
        with store.store_errors():
            store.client(on=place.store).delete(_marker(collection), _created_key(collection))
    store.drop_memory(collection)


def build(place: Place) -> IndexInfo:
    """Make the collection's index on the place's store over the keys already there (a move's target), wait
    for its scan, and record the count it made (the health baseline until the monitor's first pass)."""
    drop(place)
    create(place)
    wait_indexed(place)
    _record_created(place)
    with store.store_errors():
        store.client(on=place.store).set(_marker(place.collection), _signature())
    return inspect(place)


def remove(place: Place) -> None:
    """Drop the collection's index and every key memadmin keeps about it on the place's store (a move's
    source, once its keys are gone). The hashes themselves are the caller's to delete."""
    collection = place.collection
    drop(place)
    with store.store_errors():
        store.client(on=place.store).delete(_marker(collection), _created_key(collection), health_key(collection))


def forget_all() -> None:
    """After the server lost its indexes (FLUSHALL, a new empty server): re-check before the next query."""
    with _lock:
        _indexed.clear()


def mem0(place: Place):
    """Mem0's Memory for a collection, only once its index exists: a Memory that wrote ahead of
    FT.CREATE would leave the hash to the background scan, and a query right after would miss it."""
    ensure(place)
    return store.memory_for(place)


def embed(place: Place, text: str) -> list[float]:
    with store.store_errors():
        return mem0(place).embedding_model.embed(text, "search")


def embed_many(place: Place, texts: list[str]) -> list[list[float]]:
    """Embeddings of many texts in one call to the configured embedder (Mem0's embed_batch: one encode
    for the local model, one request for hosted ones), as Mem0 itself would embed them on add."""
    with store.store_errors():
        vectors = mem0(place).embedding_model.embed_batch(texts, "add")
    dims = settings.MEMADMIN_EMBEDDER_DIMS
    if len(vectors) != len(texts) or any(len(v) != dims for v in vectors):
        raise Conflict(
            f"The embedder did not return {len(texts)} vectors of {dims} dimensions; check "
            "MEMADMIN_EMBEDDER_DIMS against the model."
        )
    return vectors


# --- health -------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInfo:
    """What FT.INFO says about one app's index, read in one call."""

    exists: bool
    num_docs: int = 0
    failures: int = 0  # hash_indexing_failures: a counter since FT.CREATE, it never goes down
    indexing: bool = False
    percent_indexed: float = 1.0
    # RediSearch's document-id counter: +1 for every document added or re-indexed (HSET, RESTORE, COPY, a
    # RENAME from outside the prefix), never down. None when the engine does not report it (valkey-search).
    max_doc_id: int | None = None
    # The index reads another prefix than the collection's: an offboarding's empty stand-in.
    standin: bool = False


def inspect(place: Place) -> IndexInfo:
    details = info(place)
    if details is None:
        return IndexInfo(exists=False)
    indexing = decode(details.get("indexing", b"0"))
    return IndexInfo(
        exists=True,
        num_docs=int(float(decode(details.get("num_docs", 0)))),
        failures=int(float(decode(details.get("hash_indexing_failures", 0)))),
        indexing=indexing not in ("0", "0.0"),
        percent_indexed=float(decode(details.get("percent_indexed", b"1"))),
        max_doc_id=int(float(decode(details["max_doc_id"]))) if "max_doc_id" in details else None,
        standin=prefixes(details) != [store.key_prefix(place.collection)],
    )
