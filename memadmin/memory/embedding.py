"""One embedder per process, with concurrent calls coalesced into one batch.

A web worker runs several request threads (gunicorn gthread). Each search or add embeds one short text,
and one text through the local model costs nearly what four do together (one forward pass either way;
measured with all-MiniLM-L6-v2 on one torch thread: 8.5 ms for one, 4.2 ms a text in fours, 3.5 ms in
eights). So whichever thread finds the model idle runs it for every text waiting at that moment, and
hands the model on to the first thread that queued while it ran. Nothing waits on a timer: a lone
request is embedded at once, as before; under load, batches form by themselves.

Mem0's calls go through the same object (``Memory.embedding_model``), so its own adds and searches
coalesce too. Vectors equal the unbatched ones to float rounding (padding is masked out).
"""

from __future__ import annotations

import contextlib
import json
import threading
from multiprocessing import AuthenticationError

from memadmin.memory.errors import StoreUnavailable


class _Waiting:
    __slots__ = ("text", "ready", "vector", "error", "leads")

    def __init__(self, text: str):
        self.text = text
        self.ready = threading.Event()
        self.vector: list[float] | None = None
        self.error: BaseException | None = None
        self.leads = False


class CoalescingEmbedder:
    """Wraps a Mem0 embedder: ``embed`` calls that overlap become one ``embed_batch`` of at most
    ``max_batch`` texts. Everything else (``embed_batch``, ``config``, ``model``) is the wrapped one's."""

    def __init__(self, inner, max_batch: int = 16):
        self.inner = inner
        self.max_batch = max(1, max_batch)
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.batches = 0  # passes through the model, and the texts they carried: what the tests and bench read
        self.texts = 0

    def __getattr__(self, name):
        if name == "inner":  # not set yet (a copy being built): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def embed(self, text, memory_action=None):
        if not isinstance(text, str) or self.max_batch == 1:
            return self.inner.embed(text, memory_action)
        mine = _Waiting(text)
        with self._lock:
            self._queue.append(mine)
            leads = mine.leads = not self._busy
            self._busy = True
        if not leads:
            mine.ready.wait()
        if mine.leads:  # the model is ours: run it for everyone queued, then pass it on
            self._run_batch()
        if mine.error is not None:
            raise mine.error
        return mine.vector

    def _run_batch(self) -> None:
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: len(batch)]
        try:
            vectors = self.inner.embed_batch([waiting.text for waiting in batch], "search")
            if len(vectors) != len(batch):
                raise ValueError(f"The embedder returned {len(vectors)} vectors for {len(batch)} texts.")
        except BaseException as exc:  # every caller in the batch sees the failure, not only this thread
            for waiting in batch:
                waiting.error = exc
        else:
            for waiting, vector in zip(batch, vectors, strict=True):
                waiting.vector = vector
        finally:
            with self._lock:
                self.batches += 1
                self.texts += len(batch)
                if self._queue:
                    self._queue[0].leads = True
                    self._queue[0].ready.set()
                else:
                    self._busy = False
            for waiting in batch:
                waiting.ready.set()


# --- one embedder process for all the web workers of a machine ------------------------------------------
#
# Coalescing inside one worker only batches that worker's threads: with 2 workers x 4 threads at 8
# requests in flight, passes carry 2-4 texts. ``manage.py serve`` (gunicorn's master, memadmin/gunicorn_conf.py)
# therefore starts one embedder process that every worker sends its texts to over a Unix socket; its
# connection threads feed one CoalescingEmbedder, so a pass carries what all the workers are waiting
# for, and the workers spend their cores on the requests' own work meanwhile.
#
# Wire format (multiprocessing.connection's length-prefixed messages, authenticated with a per-start key;
# never pickle): a request is JSON ``{"texts": [...]}``; the answer is ``V`` + the float32 vectors back to
# back, or ``E`` + an error message. If the process cannot be reached, a worker embeds in-process (its own
# copy of the model, loaded on first need) and asks the process again after RETRY_SECONDS.

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
BATCH_MESSAGE_TEXTS = 16  # per embed_batch message: 16 x the longest text a write takes (as JSON) < 8 MiB
RETRY_SECONDS = 30.0
# Not reaching the process: it is not there (yet), it went away, or it was started with another key.
_UNREACHABLE = (OSError, EOFError, ValueError, AuthenticationError)


class EmbedderUnavailable(StoreUnavailable):
    """The embedder process answered with an error: the request that asked gets a 503 saying so."""

    def __init__(self, reason: str):
        super().__init__(f"The embedder failed on this text: {reason}")


class RemoteEmbedder:
    """A web worker's embedder when serve runs the embedder process: the same ``embed``/``embed_batch`` as
    Mem0's, answered by that process, or by ``local()`` while it cannot be reached."""

    def __init__(self, address: str, authkey: bytes, local, *, logger=None):
        self.address, self.authkey = address, authkey
        self._make_local, self._local = local, None
        self._lock = threading.Lock()
        self._tls = threading.local()
        self._down_until = 0.0
        self._logger = logger

    def __getattr__(self, name):
        if name.startswith("_") or name in ("address", "authkey"):
            raise AttributeError(name)
        return getattr(self.local(), name)  # config and the like: the in-process embedder's

    def local(self):
        if self._local is None:
            with self._lock:
                if self._local is None:
                    self._local = self._make_local()
        return self._local

    def wait_ready(self, timeout: float) -> bool:
        """Until the process answers (it loads the model while the workers start), at most ``timeout`` s."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                unpack(self._ask(json.dumps({"texts": ["warm-up"]}).encode())[1:], 1)
                return True
            except _UNREACHABLE:
                self._disconnect()
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)

    def embed(self, text, memory_action=None):
        if not isinstance(text, str):
            return self.local().embed(text, memory_action)
        vectors = self._remote([text])
        return vectors[0] if vectors is not None else self.local().embed(text, memory_action)

    def embed_batch(self, texts, memory_action="add"):
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            return self.local().embed_batch(texts, memory_action)
        vectors = []
        # In messages well under MAX_MESSAGE_BYTES (an import's batch of long texts could pass it).
        for start in range(0, len(texts), BATCH_MESSAGE_TEXTS):
            part = texts[start : start + BATCH_MESSAGE_TEXTS]
            answered = self._remote(part)
            vectors += answered if answered is not None else self.local().embed_batch(part, memory_action)
        return vectors

    def _remote(self, texts: list[str]) -> list[list[float]] | None:
        """The process's vectors, or None when it cannot be reached (the caller embeds in-process)."""
        import time

        if time.monotonic() < self._down_until:
            return None
        for attempt in (1, 2):  # a connection the process dropped (it restarted) is opened again once
            try:
                reply = self._ask(json.dumps({"texts": texts}).encode())
            except _UNREACHABLE as exc:
                self._disconnect()
                if attempt == 2:
                    self._down_until = time.monotonic() + RETRY_SECONDS
                    if self._logger:
                        self._logger.warning(
                            "The embedder process at %s cannot be reached (%s): embedding in this worker for %.0f s.",
                            self.address,
                            exc,
                            RETRY_SECONDS,
                        )
                    return None
                continue
            if reply[:1] == b"E":
                raise EmbedderUnavailable(reply[1:].decode("utf-8", "replace"))
            return unpack(reply[1:], len(texts))
        return None

    def _ask(self, message: bytes) -> bytes:
        from multiprocessing.connection import Client

        conn = getattr(self._tls, "conn", None)
        if conn is None:
            conn = self._tls.conn = Client(self.address, family="AF_UNIX", authkey=self.authkey)
        conn.send_bytes(message)
        return conn.recv_bytes(MAX_MESSAGE_BYTES)

    def _disconnect(self) -> None:
        conn = getattr(self._tls, "conn", None)
        self._tls.conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


def pack(vectors) -> bytes:
    import numpy as np

    return b"V" + np.asarray(vectors, dtype=np.float32).tobytes()


def unpack(data: bytes, count: int) -> list[list[float]]:
    import numpy as np

    flat = np.frombuffer(data, dtype=np.float32)
    if count == 0 or flat.size % count:
        raise ValueError(f"The embedder process sent {flat.size} floats for {count} texts.")
    return flat.reshape(count, -1).tolist()


class EmbedderService:
    """The embedder process's side: one thread per connected worker thread, one CoalescingEmbedder."""

    def __init__(self, embedder: CoalescingEmbedder, address: str, authkey: bytes, *, logger=None):
        self.embedder, self.address, self.authkey = embedder, address, authkey
        self._logger = logger
        self._listener = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set = set()

    def start(self) -> None:
        import os
        from multiprocessing.connection import Listener

        old = os.umask(0o177)  # the socket file: this user only (and the key on top)
        try:
            self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey, backlog=64)
        finally:
            os.umask(old)

    def serve_forever(self) -> None:
        if self._listener is None:
            self.start()
        while not self._stopping.is_set():
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):  # closed by stop(), or a client without the key
                if self._stopping.is_set():
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="embedder-conn").start()

    def stop(self) -> None:
        """Stop accepting, and hang up on every worker (each falls back to embedding itself)."""
        import socket

        self._stopping.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.connect(self.address)  # closing a listener does not wake a thread blocked in accept(); this does
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.close()

    def _serve(self, conn) -> None:
        with self._lock:
            self._connections.add(conn)
        try:
            self._answer_until_closed(conn)
        finally:
            with self._lock:
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _answer_until_closed(self, conn) -> None:
        while True:
            try:
                message = conn.recv_bytes(MAX_MESSAGE_BYTES)
                conn.send_bytes(self.answer(message))
            # The worker hung up, or stop() closed the connection under this thread (its handle is then
            # None, and the read in progress fails with TypeError rather than OSError).
            except (EOFError, OSError, TypeError):
                return

    def answer(self, message: bytes) -> bytes:
        try:
            texts = json.loads(message)["texts"]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                return b"E" + b'send {"texts": [one or more strings]}'
            if len(texts) == 1:
                return pack([self.embedder.embed(texts[0], "search")])
            return pack(self.embedder.inner.embed_batch(texts, "add"))
        except Exception as exc:  # the worker raises it for the request that asked; the process keeps serving
            if self._logger:
                self._logger.exception("Embedding failed in the embedder process.")
            return b"E" + f"{type(exc).__name__}: {exc}".encode()
