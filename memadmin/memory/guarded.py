"""Writes that never re-create a deleted memory: the server-side scripts, and Mem0's valkey store with an update
that writes only to a hash that still exists (memadmin/memory/store.py memory_for installs it)."""

from __future__ import annotations

import contextvars
import copy
import functools
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from memadmin.memory.errors import NotFound

# A memory's hash is rewritten only while it exists, checked and written in one step on the server: a
# deletion that lands between a write's read and its HSET makes the write a no-op instead of bringing the
# erased memory back. One key per script, as cluster mode needs. Returns 1 when written, 0 when the hash
# was gone. No tombstones: nothing to expire, and an id may be used again.
_HSET_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
# The other side, for writes that must only create (imports): never overwrite a hash that is there.
_HSET_NEW = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def _flat(mapping: dict) -> list:
    return [part for pair in mapping.items() for part in pair]


def hset_existing(pool, key: str, mapping: dict) -> bool:
    """HSET ``mapping`` into ``key`` (on the store ``pool`` talks to) only if the hash still exists; False when it
    was deleted."""
    return bool(pool.eval(_HSET_EXISTING, 1, key, *_flat(mapping)))


def hset_new(pipe, key: str, mapping: dict) -> None:
    """Queue, on a pipeline, an HSET that creates ``key`` only if no hash is there (reply 1, else 0)."""
    pipe.eval(_HSET_NEW, 1, key, *_flat(mapping))


# Keys Mem0's add(infer=False) puts into each memory's metadata from the message (its role, the name as
# actor_id) that the caller never sent as metadata. Its history row keeps them; the memory does not.
_FROM_MESSAGE = ("role", "actor_id")
_sent = contextvars.ContextVar("memadmin_sent_metadata", default=None)


class Written:
    """What one add sent as metadata, and per memory id the fields Mem0's insert stored (hash, created_at,
    updated_at), so that add answers exactly what a later read returns."""

    def __init__(self, metadata: dict | None):
        self.metadata = dict(metadata or {})
        self.stored: dict[str, dict] = {}
        self.micros: dict[str, int] = {}  # per memory id, Mem0's created_at in microseconds


@contextmanager
def as_sent(metadata: dict | None):
    """Mem0 inserts inside this block store ``metadata`` as the caller sent it; yields a Written."""
    written = Written(metadata)
    token = _sent.set(written)
    try:
        yield written
    finally:
        _sent.reset(token)


# Mem0's payload fields of a memory (its valkey store keeps all but text_lemmatized in TAG and TEXT fields); the
# rest of a payload is the memory's metadata.
_MEM0_FIELDS = frozenset(
    {"data", "hash", "created_at", "updated_at", "user_id", "agent_id", "run_id", "text_lemmatized"}
)
_editing = contextvars.ContextVar("memadmin_edit", default=None)


class Edit:
    """One edit of a memory by a person (memadmin/memory/services.py memory_edit), as Mem0's update carries it out."""

    def __init__(self, memory_id: str, actor: str, metadata: dict | None):
        self.memory_id = memory_id
        self.actor = actor
        self.metadata = metadata  # the whole new metadata, or None to keep it
        self.kept: dict = {}  # what the memory's payload said of role and actor_id before the edit


@contextmanager
def editing(*, memory_id: str, actor: str, metadata: dict | None = None):
    """Mem0's update of ``memory_id`` inside this block writes a history row that names ``actor`` (Mem0 takes a
    row's actor_id from the payload it reads, and refuses one in the caller's metadata), and replaces the memory's
    metadata with ``metadata`` when given (Mem0 would merge it into the old one, so no key could be removed)."""
    token = _editing.set(Edit(str(memory_id), actor, metadata))
    try:
        yield
    finally:
        _editing.reset(token)


def _edit_of(vector_id) -> Edit | None:
    edit = _editing.get()
    return edit if edit is not None and str(vector_id) == edit.memory_id else None


def _edited(payload: dict, edit: Edit) -> dict:
    """The payload Mem0 writes back, as the memory should hold it: without the actor lent to the history row."""
    payload = {key: value for key, value in payload.items() if key not in _FROM_MESSAGE}
    if edit.metadata is None:
        return {**payload, **edit.kept}
    return {**{key: value for key, value in payload.items() if key in _MEM0_FIELDS}, **edit.metadata}


@functools.cache
def guarded_store_class():
    from mem0.vector_stores.valkey import ValkeyDB

    class GuardedValkeyDB(ValkeyDB):
        """Mem0's valkey store whose ``update`` writes only to a hash that still exists.

        Mem0's update embeds the new text, reads the record, then rewrites the whole hash with HSET, which
        re-creates a record deleted after the read (and its history row then brings the erased text back).
        Mem0 builds the hash exactly as before, on a per-call view whose client runs HSET as the
        conditional script; a lost race raises NotFound before Mem0 writes its history row."""

        def insert(self, vectors, payloads=None, ids=None):
            written = _sent.get()
            if written is None or payloads is None:
                return ValkeyDB.insert(self, vectors=vectors, payloads=payloads, ids=ids)
            # Copies: Mem0 writes its history row (with role and actor_id) from the same dict after the insert.
            payloads = [_as_sent(payload, written.metadata) for payload in payloads]
            for memory_id, payload in zip(ids or [], payloads):
                if payload.get("created_at"):
                    written.micros[str(memory_id)] = _micros(payload["created_at"])
            view = copy.copy(self)
            view.client = _Recording(self.client, written)
            return ValkeyDB.insert(view, vectors=vectors, payloads=payloads, ids=ids)

        def get(self, vector_id):
            found = ValkeyDB.get(self, vector_id=vector_id)
            edit = _edit_of(vector_id)
            if edit is not None and found is not None:
                edit.kept = {key: found.payload.pop(key) for key in _FROM_MESSAGE if key in found.payload}
                found.payload["actor_id"] = edit.actor  # Mem0's history row reads its actor from here
            return found

        def update(self, vector_id=None, vector=None, payload=None):
            edit = _edit_of(vector_id)
            if edit is not None and payload is not None:
                # A copy: Mem0 writes its history row (with the actor) from the same dict after the update.
                payload = _edited(payload, edit)
            view = copy.copy(self)
            view.client = _ExistingOnly(self.client)
            ValkeyDB.update(view, vector_id=vector_id, vector=vector, payload=payload)
            if view.client.gone:
                raise NotFound()

    return GuardedValkeyDB


class _ExistingOnly:
    """The only client call Mem0's ValkeyDB.update makes, HSET, run as the conditional script."""

    def __init__(self, pool):
        self._pool = pool
        self.gone = False

    def hset(self, key, mapping):
        # Store errors surface as valkey's exceptions: Mem0's update runs inside the caller's store_errors().
        written = self._pool.eval(_HSET_EXISTING, 1, key, *_flat(mapping))
        self.gone = not written
        return written


# Mem0 stores created_at in whole seconds (its readers parse the field with int(), so it stays that way), and
# the index orders memories of one second by their random ids. Mem0's own clock reads microseconds: memadmin's
# adds keep that reading in a hash field outside Mem0's schema, which Mem0 neither reads nor overwrites, and
# the newest-first order breaks ties within a second by it (memadmin/memory/keyset.py).
CREATED_MICROS = "created_at_us"


def _micros(iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _as_sent(payload: dict, sent: dict) -> dict:
    payload = dict(payload)
    for key in _FROM_MESSAGE:
        if key in sent:
            payload[key] = sent[key]
        else:
            payload.pop(key, None)
    return payload


class _Recording:
    """The only client call Mem0's ValkeyDB.insert makes, HSET, with updated_at (Mem0 sets it equal to created_at
    in the payload but its valkey insert drops it; its update writes it) and what was stored noted for the add."""

    def __init__(self, pool, written: Written):
        self._pool = pool
        self._written = written

    def hset(self, key, mapping):
        mapping = {**mapping, "updated_at": mapping["created_at"]}
        micros = self._written.micros.get(str(mapping["memory_id"]))
        if micros is not None and micros // 1_000_000 == mapping["created_at"]:
            mapping[CREATED_MICROS] = micros
        result = self._pool.hset(key, mapping=mapping)
        self._written.stored[str(mapping["memory_id"])] = {
            name: mapping[name] for name in ("hash", "created_at", "updated_at")
        }
        return result
