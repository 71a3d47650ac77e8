"""gunicorn's configuration: ``manage.py serve`` runs ``gunicorn -c python:memadmin.gunicorn_conf memadmin.wsgi``.

Every value comes from the environment (docs/deploying.md "What runs"). Workers are separate processes, each with
a few threads: a request spends most of its time waiting on Valkey, the database or the embedder
process, which the master starts before the workers (``manage.py embedder``): every worker sends its
texts there, and texts that arrive together share one pass through the model (memadmin/memory/embedding.py).

The master never imports the project (no ``preload_app``), so HUP starts workers on the code now on disk
and the old ones finish their requests (graceful reload); TERM stops taking connections and lets
requests in flight finish for up to the graceful timeout. What the master does import is the heavy,
rarely upgraded stack (Mem0 and ONNX Runtime, or torch and sentence-transformers), once: forked
workers share those pages and start in about a second; each then loads the embedder before it accepts a request.
"""

from __future__ import annotations

import contextlib
import os

from memadmin.env import env_bool, env_choice, env_int, env_str


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "memadmin.wsgi:application"
bind = env_str("MEMADMIN_BIND", "127.0.0.1:8000")
# One process per core (at least two, so a reload or a crash never leaves nobody listening), eight threads
# each: a request mostly waits (Valkey, the database, the embedder process), and a kept-alive connection
# stays with the worker that accepted it, so with four threads 8 clients split 5/3 left one waiting.
# Each worker holds a copy of the embedder (~150 MB with torch), its fallback while the process is away.
workers = env_int("MEMADMIN_WEB_WORKERS", max(2, _cores()), minimum=1)
threads = env_int("MEMADMIN_WEB_THREADS", 8, minimum=1)
worker_class = "gthread"
preload_app = False  # the docstring says why: HUP must load the new code
# With threads, a worker that stops answering the master for this long is killed and replaced; one slow
# request is bounded by the store's query timeout (MEMADMIN_QUERY_TIMEOUT_MS) and the proxy's read timeout,
# and a streamed export may legitimately run longer than this.
timeout = env_int("MEMADMIN_WEB_TIMEOUT", 60, minimum=1)
graceful_timeout = env_int("MEMADMIN_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = 5
# gunicorn refuses what is over its limits with a plain-text 400 before Django runs. Far above memadmin's own
# limits (memadmin/wsgi_edge.py), so those requests reach it and get a JSON 414 or 431; gunicorn's stay as the
# bound on what a connection may make it buffer: a request line of 1 MiB (0 = gunicorn's largest), 400 fields
# of 16 KiB each.
limit_request_line = 0
limit_request_fields = 400
limit_request_field_size = 16384
# Recycle a worker after this many requests (0 = never), jittered so they do not all restart together.
max_requests = env_int("MEMADMIN_WEB_MAX_REQUESTS", 0, minimum=0)
max_requests_jitter = max_requests // 10
_access = env_str("MEMADMIN_ACCESS_LOG", "-")  # "-" = stdout, a path, or "off"
accesslog = None if _access.lower() == "off" else _access
# %(M)s: milliseconds taken; pid: which worker answered. Link tokens in paths are redacted by the log
# record factory every worker installs at start (memadmin/redact.py).
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s "%(a)s"'
errorlog = "-"
# gunicorn 27 opens a control socket in ~/.gunicorn by default: one path for every instance on the host.
control_socket_disable = True
loglevel = env_str("LOG_LEVEL", "info").lower()
proc_name = "memadmin-web"
# Only the proxy on this machine may say a request came over HTTPS (with MEMADMIN_TRUST_X_FORWARDED_PROTO).
forwarded_allow_ips = env_str("MEMADMIN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
_preload_embedder = env_bool("MEMADMIN_PRELOAD_EMBEDDER", True)
# One embedder process for all the workers (memadmin/memory/embedding.py): texts from every worker share
# a pass through the local model. Only for the local model; a hosted embedder batches on its side.
_embedder_process = (
    env_bool("MEMADMIN_EMBEDDER_PROCESS", True)
    and env_str("MEMADMIN_EMBEDDER_PROVIDER", "huggingface") == "huggingface"
    and not env_str("MEMADMIN_EMBEDDER_BASE_URL")
)


def on_starting(server):
    import redis  # noqa: F401  (Django's cache backend imports it on the first cache access)

    if _preload_embedder:
        # What store.py would set on import; the master imports the libraries, not the project.
        for name, value in (
            ("MEM0_TELEMETRY", "False"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
            ("TRANSFORMERS_VERBOSITY", "error"),
        ):
            os.environ.setdefault(name, value)
        import mem0  # noqa: F401

        if env_choice("MEMADMIN_EMBEDDER_RUNTIME", "onnx", ("onnx", "torch")) == "onnx":
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
        else:
            import sentence_transformers  # noqa: F401


def exit_description(process) -> str:
    """Wait for ``process`` to end and say how it did. gunicorn's master reaps every child that ends (its SIGCHLD
    handler waits for any pid), often before this thread does; Popen.wait then reports 0, as if the process had
    ended cleanly after a SIGKILL. So wait on the pid itself, and say so when the status went to the master."""
    try:
        _pid, status = os.waitpid(process.pid, 0)
    except ChildProcessError:
        return "is gone, exit status unknown (the master reaped it first)"
    process.returncode = code = os.waitstatus_to_exitcode(status)
    return f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"


class EmbedderProcess:
    """``manage.py embedder``, started by the master before it forks workers and restarted if it dies;
    the workers find it through two environment variables (the socket, a key made for this start)."""

    def __init__(self, log):
        import secrets
        import tempfile

        self.log = log
        self.directory = tempfile.mkdtemp(prefix="memadmin-embedder-")  # short: AF_UNIX paths stop at 107
        self.socket = os.path.join(self.directory, "embedder.sock")
        self.key = secrets.token_hex(32)
        self.process = None
        self.stopping = False

    def start(self) -> None:
        import subprocess
        import sys
        import threading

        os.environ["MEMADMIN_EMBEDDER_SOCKET"], os.environ["MEMADMIN_EMBEDDER_KEY"] = self.socket, self.key
        manage = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "manage.py")
        self.argv = [sys.executable, manage, "embedder"]
        self.process = subprocess.Popen(self.argv)
        threading.Thread(target=self._supervise, daemon=True, name="embedder-supervisor").start()

    def _supervise(self) -> None:
        import subprocess
        import time

        while not self.stopping:
            how = exit_description(self.process)
            if self.stopping:
                return
            # The workers embed themselves meanwhile; one that keeps dying is started again every 5 s at most.
            self.log.warning("The embedder process (pid %s) %s; restarting it in 5 s.", self.process.pid, how)
            time.sleep(5)
            if not self.stopping:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.socket)
                self.process = subprocess.Popen(self.argv)

    def stop(self) -> None:
        import shutil
        import subprocess

        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def when_ready(server):
    # The master is listening and about to fork the workers: start the process they will send texts to.
    # Kept on the arbiter, which outlives this module: HUP executes the configuration again.
    if _embedder_process and getattr(server, "memadmin_embedder", None) is None:
        server.memadmin_embedder = EmbedderProcess(server.log)
        server.memadmin_embedder.start()


def on_exit(server):
    embedder = getattr(server, "memadmin_embedder", None)
    if embedder is not None:
        embedder.stop()


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn's answer to what its parser refuses (a Content-Length that is no number, raw non-ASCII bytes in
    the request line, a request over its own limits) in the API's error shape rather than an HTML page: API clients
    parse it, and no request line may have been read, so there is no path to choose the format by."""
    import json

    from gunicorn import util

    message = f"{reason}: {mesg}" if mesg else reason
    code = "bad_request" if status_int == 400 else reason.lower().replace(" ", "_")
    body = json.dumps({"error": {"code": code, "message": message, "field": None}, "detail": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def post_fork(server, worker):
    from gunicorn import util

    util.write_error = _write_json_error  # the one function gunicorn's workers answer their refusals with


def post_worker_init(worker):
    # Django imports views on the first request that resolves a URL: do it now (~1 s of imports).
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
    # The embedder itself was loaded by memadmin/wsgi.py (embedders.warm_up), before this hook runs.
