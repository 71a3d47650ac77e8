"""Offboarding benchmark: drop an app of N memories through the job machinery, against Mem0's one-by-one delete.

``run_offboard_bench(n)`` expects Django configured (bench.env.configure) and returns a dict:
memories/s of the offboard job run by a real worker process, that worker's peak RSS, and the
rate of mem0 ``Memory.delete(id)`` on a sample of the same kind of memories (the baseline a
Mem0 user has), with the ratio. Importing this module does nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import numpy as np

DIMS = 384
CHUNK = 1000
EPOCH = 1_735_689_600


def load_memories(client, collection: str, n: int, *, users: int = 50, agents: int = 5, runs: int = 200,
                  dims: int = DIMS, seed: int = 0, history: bool = True, history_path: Path | None = None,
                  start: int = 0) -> int:  # fmt: skip
    """Write n memories in Mem0's hash layout (random unit vectors), pipelined; optionally one Mem0 history
    row each and a few chat messages, in the collection's Mem0 history DB. Returns n."""
    rng = np.random.default_rng(seed + start)
    connection = None
    if history and history_path is not None:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(history_path)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, "
            "new_memory TEXT, event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, "
            "actor_id TEXT, role TEXT)"
        )
        connection.execute(
            "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, session_scope TEXT, role TEXT, "
            "content TEXT, name TEXT, created_at DATETIME)"
        )
    for offset in range(start, start + n, CHUNK):
        size = min(CHUNK, start + n - offset)
        vectors = rng.standard_normal((size, dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pipe = client.pipeline(transaction=False)
        rows, messages = [], []
        for i in range(size):
            k = offset + i
            memory_id = str(uuid.UUID(int=rng.integers(0, 2**63) << 64 | k))
            user, agent, run = f"user-{k % users}", f"agent-{k % agents}", f"run-{k % runs}"
            created = EPOCH - (k * 97) % (365 * 86400)
            pipe.hset(f"mem0:{collection}:{memory_id}", mapping={
                "memory_id": memory_id, "hash": f"h{k}", "memory": f"memory number {k} of {user}",
                "created_at": created, "user_id": user, "agent_id": agent, "run_id": run,
                "metadata": json.dumps({"n": k}), "embedding": vectors[i].tobytes(),
            })  # fmt: skip
            if connection is not None:
                rows.append((str(uuid.uuid4()), memory_id, None, f"memory number {k}", "ADD",
                             "2025-01-01T00:00:00+00:00", None, 0, None, None))  # fmt: skip
                if k < runs:
                    messages.append((str(uuid.uuid4()), f"agent_id={agent}&run_id={run}&user_id={user}", "user",
                                     f"message {k}", None, "2025-01-01T00:00:00+00:00"))  # fmt: skip
        pipe.execute()
        if connection is not None:
            with connection:
                connection.executemany("INSERT INTO history VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                connection.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?)", messages)
    if connection is not None:
        connection.close()
    return n
