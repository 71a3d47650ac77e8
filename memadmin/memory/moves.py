"""Moving an app between memory stores: copy its hashes, prove the copy, then delete the original.

Like bulk.py, every function takes a ``cursor`` (a JSON-able dict the caller
persists) and a ``progress(cursor)`` callback that persists it, so a job killed
at any instant resumes where it stopped. The caller (tenants/jobs) freezes the
app first (no writes, no deletions: AppRef.moving), switches the app's store
between the two halves, and unfreezes it at the end.

1. ``app_copy``: clear what an earlier, abandoned attempt left on the target;
   SCAN the source prefix and copy each batch with DUMP + RESTORE ... REPLACE
   (idempotent, so a resumed batch is simply copied again); then verify: the
   keys under the prefix are as many on the target as on the source, and the
   target's index, built with Mem0's schema over them (index.build), holds
   every one with no indexing failure, and no key on the target is gone from
   the source. A difference (something deleted or written on the source during
   the copy) starts another pass from a cleared target, up to MAX_PASSES.
2. ``app_source_drop`` (after the switch): SCAN the source again; a key the
   target lacks (written there by a Mem0 OSS agent after the copy) is copied
   first, then the batch is unlinked; the source's index and memadmin's keys
   about it go last, and the source must count 0 keys under the prefix.

DUMP payloads carry the server's RDB version: the target must run the same
Valkey version as the source, or a newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from valkey import exceptions as vexc

from memadmin.memory import capabilities as cap
from memadmin.memory import index, store
from memadmin.memory.errors import Conflict, ValidationError
from memadmin.memory.purge import erasure_mark
from memadmin.memory.scope import Scope
from memadmin.memory.store import Place

logger = logging.getLogger("memadmin.memory.moves")

Progress = Callable[[dict], None]
MAX_PASSES = 3


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _scan(collection: str, on: str, scan_cursor: int, batch_size: int) -> tuple[int, list[bytes]]:
    with store.store_errors():
        next_cursor, keys = store.client(on=on).scan(
            cursor=scan_cursor, match=f"{store.key_prefix(collection)}*", count=batch_size
        )
    return int(next_cursor), [k if isinstance(k, bytes) else str(k).encode() for k in keys]


def key_count(collection: str, on: str) -> int:
    """Keys under the collection's prefix on one store (SCAN: whole-app work only)."""
    total, cursor = 0, 0
    while True:
        cursor, keys = _scan(collection, on, cursor, 1000)
        total += len(keys)
        if cursor == 0:
            return total


def _copy(keys: list[bytes], source: str, target: str) -> int:
    """DUMP on the source, RESTORE REPLACE on the target, both pipelined; keys gone meanwhile are skipped."""
    if not keys:
        return 0
    with store.store_errors():
        pipe = store.client(on=source).pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
        replies = pipe.execute()
        pipe = store.client(on=target).pipeline(transaction=False)
        copied = 0
        for key, payload, ttl in zip(keys, replies[::2], replies[1::2]):
            if payload is None:
                continue
            pipe.restore(key, max(int(ttl), 0), payload, replace=True)
            copied += 1
        try:
            pipe.execute()
        except vexc.ResponseError as exc:
            if "payload version" in str(exc).lower() or "checksum" in str(exc).lower():
                raise Conflict(
                    f"The target store cannot read the source's data ({exc}): it must run the same "
                    "Valkey version as the source, or a newer one."
                ) from exc
            raise
    return copied


def _gone_from_source(collection: str, source: str, target: str, batch_size: int) -> int:
    """Keys copied to the target that the source no longer has: deleted there during the copy (an agent
    using Mem0 directly; memadmin's own deletions wait for the move). Equal counts do not prove the copy:
    one deletion and one new memory balance, and the deleted memory would live on in the target."""
    gone, scan_cursor = 0, 0
    while True:
        scan_cursor, keys = _scan(collection, target, scan_cursor, batch_size)
        if keys:
            with store.store_errors():
                pipe = store.client(on=source).pipeline(transaction=False)
                for key in keys:
                    pipe.exists(key)
                gone += sum(1 for there in pipe.execute() if not there)
        if scan_cursor == 0:
            return gone


def _unlink(keys: list[bytes], on: str) -> int:
    if not keys:
        return 0
    with store.store_errors():
        unlinked = int(store.client(on=on).unlink(*keys))
    if unlinked:
        erasure_mark(on=on)  # that store's AOF still holds the texts it no longer serves
    return unlinked


def _check_target(target: str) -> str:
    if target not in store.store_names():
        raise ValidationError(f"No memory store is called {target!r}.", field="store")
    return target


def app_copy(
    *, scope: Scope, app_id: str, target: str, cursor: dict, progress: Progress, batch_size: int = 1000
) -> dict:
    """Copy a frozen app to ``target`` and verify the copy (module docstring, step 1). Returns the cursor with
    ``phase`` "copied" and ``verified`` (the counts the receipt carries)."""
    scope.require(cap.MOVE_APP)
    if not 1 <= batch_size <= 10_000:
        raise ValidationError("batch_size must be between 1 and 10000.", field="batch_size")
    app = scope.app_named(app_id)
    collection = app.collection
    cursor.setdefault("source", app.store)
    cursor.setdefault("target", _check_target(target))
    source = cursor["source"]
    if cursor["target"] == source:
        raise ValidationError(f"App {app.app_id} is already on store {source}.", field="store")
    if app.store != source:
        raise Conflict(f"App {app.app_id} is on store {app.store}, not {source}, where this move began.")
    cursor.setdefault("phase", "clear")
    cursor.setdefault("pass", 1)
    cursor.setdefault("scan", 0)
    cursor.setdefault("copied", 0)

    while cursor["phase"] in ("clear", "copy", "verify"):
        phase = cursor["phase"]
        if phase == "clear":  # leftovers of an abandoned attempt, or of this move's previous pass
            index.drop(Place(target, collection))
            next_cursor, keys = _scan(collection, target, cursor["scan"], batch_size)
            _unlink(keys, target)
            cursor["scan"] = next_cursor
            if next_cursor == 0:
                cursor.update(phase="copy", scan=0, copied=0, done=0)
            progress(cursor)
        elif phase == "copy":
            next_cursor, keys = _scan(collection, source, cursor["scan"], batch_size)
            copied = _copy(keys, source, target)
            cursor["scan"] = next_cursor
            cursor["copied"] += copied
            cursor["done"] = cursor["copied"]
            if next_cursor == 0:
                cursor["phase"] = "verify"
            progress(cursor)
        elif phase == "verify":
            source_keys, target_keys = key_count(collection, source), key_count(collection, target)
            gone = _gone_from_source(collection, source, target, batch_size)
            built = index.build(Place(target, collection))
            cursor["verified"] = {
                "source_keys": source_keys,
                "target_keys": target_keys,
                "target_documents": built.num_docs,
                "target_indexing_failures": built.failures,
                "target_indexing": built.indexing,
                "at": _now(),
                "target_keys_gone_from_source": gone,
            }
            if source_keys != target_keys or gone:
                if cursor["pass"] >= MAX_PASSES:
                    raise Conflict(
                        f"The source kept changing during the copy ({source_keys} keys there, {target_keys} copied, "
                        f"{gone} copied keys deleted there since, after {cursor['pass']} passes): an agent may be "
                        "writing to it with Mem0 directly. "
                        "Stop it and run the move again."
                    )
                logger.warning(
                    "Move of %s: %s keys on the source, %s on the target, %s of them deleted on the "
                    "source since; copying again",
                    collection,
                    source_keys,
                    target_keys,
                    gone,
                )
                cursor.update(phase="clear", scan=0, **{"pass": cursor["pass"] + 1})
            elif not built.exists or built.indexing or built.failures or built.num_docs != target_keys:
                raise Conflict(
                    f"The index built on store {target} is not healthy ({built.num_docs} documents for {target_keys} "
                    f"keys, {built.failures} indexing failures): the app stays where it was. Run the move again."
                )
            else:
                cursor["phase"] = "copied"
            progress(cursor)
    return cursor


def app_source_drop(*, scope: Scope, app_id: str, cursor: dict, progress: Progress, batch_size: int = 1000) -> dict:
    """Delete the app from the store it left (module docstring, step 2), once the app is switched to the
    target. Returns the cursor with ``phase`` "done", ``dropped`` and ``late_copied`` counts and
    ``remaining`` (keys left under the prefix on the source: 0)."""
    scope.require(cap.MOVE_APP)
    app = scope.app_named(app_id)
    collection = app.collection
    source, target = cursor["source"], cursor["target"]
    if app.store != target:
        raise Conflict(f"App {app.app_id} is not switched to store {target} yet; its source stays.")
    if cursor.get("phase") != "drop":
        cursor.update(phase="drop", scan=0, dropped=0, late_copied=0)
        progress(cursor)
    while cursor["phase"] == "drop":
        next_cursor, keys = _scan(collection, source, cursor["scan"], batch_size)
        if keys:
            with store.store_errors():
                pipe = store.client(on=target).pipeline(transaction=False)
                for key in keys:
                    pipe.exists(key)
                present = pipe.execute()
            late = [key for key, there in zip(keys, present) if not there]
            cursor["late_copied"] += _copy(late, source, target)
            cursor["dropped"] += _unlink(keys, source)
        cursor["scan"] = next_cursor
        if next_cursor == 0:
            index.remove(Place(source, collection))
            cursor["remaining"] = key_count(collection, source)
            cursor["verified_at"] = _now()
            cursor["phase"] = "done"
        progress(cursor)
    if cursor["late_copied"]:
        # Late keys reached the target after its index was built: they are indexed on write, but the
        # health baseline the build recorded no longer counts them.
        index.forget(Place(target, collection))
    return cursor


__all__ = ["app_copy", "app_source_drop", "key_count"]
