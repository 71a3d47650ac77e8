"""Write memory hashes straight into Valkey in Mem0's own layout (ValkeyDB.insert), without an embedder.

For data the tests need in bulk or in shapes the service never writes (old Mem0
versions, metadata smuggling identity, vectors the index refuses).
"""

import json
import time
import uuid

import numpy as np

DIMS = 384
_rng = np.random.default_rng(20261121)


def unit_vector(dims: int = DIMS) -> bytes:
    vector = _rng.standard_normal(dims).astype(np.float32)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tobytes()


def mem0_hash(
    *,
    memory_id: str | None = None,
    text: str = "a memory",
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    metadata: dict | None = None,
    created_at: int | None = None,
    updated_at: int | None = None,
    embedding: bytes | None = None,
) -> tuple[str, dict]:
    """(memory_id, fields) exactly as Mem0's ValkeyDB.insert lays them out; None fields are left out."""
    memory_id = memory_id or str(uuid.uuid4())
    fields = {
        "memory_id": memory_id,
        "hash": f"hash_{memory_id}",
        "memory": text,
        "created_at": int(time.time()) if created_at is None else created_at,
        "embedding": embedding if embedding is not None else unit_vector(),
    }
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        if value is not None:
            fields[name] = value
    if updated_at is not None:
        fields["updated_at"] = updated_at
    if metadata is not None:
        fields["metadata"] = json.dumps(metadata)
    return memory_id, fields


def put(raw, collection: str, **kwargs) -> str:
    memory_id, fields = mem0_hash(**kwargs)
    raw.hset(f"mem0:{collection}:{memory_id}", mapping=fields)
    return memory_id


def put_many(raw, collection: str, rows: list[dict], chunk: int = 500) -> list[str]:
    ids = []
    for start in range(0, len(rows), chunk):
        pipe = raw.pipeline(transaction=False)
        for row in rows[start : start + chunk]:
            memory_id, fields = mem0_hash(**row)
            pipe.hset(f"mem0:{collection}:{memory_id}", mapping=fields)
            ids.append(memory_id)
        pipe.execute()
    return ids


def keys_of(raw, collection: str) -> list[bytes]:
    """Every key under the collection's prefix, by SCAN (what the index may have missed included)."""
    return list(raw.scan_iter(match=f"mem0:{collection}:*", count=1000))
