"""Which job workers are alive: every process that runs jobs keeps a key with a short TTL in Valkey.

A job's lease (runners.claim) names the worker process that holds it. A worker killed with SIGKILL stops
refreshing its key, and a live worker that finds the lease holder gone takes the job over at once instead
of waiting for the whole lease (MEMADMIN_JOB_LEASE_SECONDS, 120 s by default) to run out. On the same machine
the process itself is asked first, so a worker restarted a second after the kill resumes the job a second
after the kill; on another machine the key's TTL bounds the wait.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

from memadmin.memory.collections import liveness_mark, liveness_seen
from memadmin.memory.errors import StoreUnavailable

logger = logging.getLogger("memadmin.jobs")

BEAT_SECONDS = 3
TTL_SECONDS = 10  # a worker whose key is older than this is gone (three beats missed)
_started_in: int | None = None  # the pid whose beating thread runs (a forked pool child starts its own)
_start_lock = threading.Lock()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_key(worker: str) -> str:
    return f"memadmin:worker:{worker}"


def _beat_once(worker: str) -> None:
    try:
        liveness_mark(key=heartbeat_key(worker), ttl_seconds=TTL_SECONDS)
    except StoreUnavailable as exc:  # the job itself will say so; the beat tries again
        logger.debug("Worker heartbeat not written: %s", exc.message)


def _beating(worker: str) -> None:
    while True:
        time.sleep(BEAT_SECONDS)
        _beat_once(worker)


def heartbeat_start() -> str:
    """Start this process's heartbeat (once per process); returns its worker id. Celery's worker and pool
    processes call it as they start (tasks.py); a job run elsewhere (a test, a shell) has no heartbeat and
    its lease only expires."""
    global _started_in
    worker = worker_id()
    with _start_lock:
        if _started_in != os.getpid():
            _beat_once(worker)
            threading.Thread(target=_beating, args=(worker,), daemon=True, name="worker-heartbeat").start()
            _started_in = os.getpid()
    return worker


def current_worker() -> str | None:
    """This process's worker id while its heartbeat runs, else None."""
    return worker_id() if _started_in == os.getpid() else None


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # an exited child its parent has not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return False


def worker_gone(worker: str) -> bool:
    """Is the worker that holds a lease gone? When the store cannot say, it is assumed alive."""
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        # On this machine the process itself answers: a live one stalled past its key's TTL (a long C call
        # holding the GIL) keeps its job; a reused pid is still bounded by the lease.
        return _process_gone(int(pid))
    try:
        return not liveness_seen(key=heartbeat_key(worker))
    except StoreUnavailable:
        return False
