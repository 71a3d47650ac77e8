"""gunicorn's configuration: ``manage.py serve`` runs ``gunicorn -c python:memadmin.gunicorn_conf memadmin.wsgi``.

Every value comes from the environment (README, "Deploying"). Workers are separate processes, each with
a few threads: a request spends most of its time waiting on Valkey or the database, and the CPU part
(one embedding, ~12 ms on one torch thread) runs with the GIL released.

The master never imports the project (no ``preload_app``), so HUP starts workers on the code now on disk
and the old ones finish their requests (graceful reload); TERM stops taking connections and lets
requests in flight finish for up to the graceful timeout. What the master does import is the heavy,
rarely upgraded stack (torch, sentence-transformers, Mem0: ~8 s), once: forked workers share those
pages and start in about a second; each then loads the embedder before it accepts a request.
"""

from __future__ import annotations

import os

from memadmin.env import env_bool, env_int, env_str


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


wsgi_app = "memadmin.wsgi:application"
bind = env_str("MEMADMIN_BIND", "127.0.0.1:8000")
# One process per core (at least two, so a reload or a crash never leaves nobody listening), four threads
# each: on 2 cores, 2 x 4 requests in flight. Each worker holds the embedder (~150 MB with torch).
workers = env_int("MEMADMIN_WEB_WORKERS", max(2, _cores()), minimum=1)
threads = env_int("MEMADMIN_WEB_THREADS", 4, minimum=1)
worker_class = "gthread"
preload_app = False  # the docstring says why: HUP must load the new code
# With threads, a worker that stops answering the master for this long is killed and replaced; one slow
# request is bounded by the store's query timeout (MEMADMIN_QUERY_TIMEOUT_MS) and the proxy's read timeout,
# and a streamed export may legitimately run longer than this.
timeout = env_int("MEMADMIN_WEB_TIMEOUT", 60, minimum=1)
graceful_timeout = env_int("MEMADMIN_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = 5
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


def on_starting(server):
    import redis  # noqa: F401  (Django's cache backend imports it on the first cache access)

    if _preload_embedder:
        # What store.py would set on import; the master imports the libraries, not the project.
        for name, value in (("MEM0_TELEMETRY", "False"), ("HF_HUB_OFFLINE", "1"),
                            ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error")):  # fmt: skip
            os.environ.setdefault(name, value)
        import mem0  # noqa: F401
        import sentence_transformers  # noqa: F401


def post_worker_init(worker):
    # Django imports views on the first request that resolves a URL: do it now (~1 s of imports).
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
    # The embedder itself was loaded by memadmin/wsgi.py (store.warm_up), before this hook runs.
