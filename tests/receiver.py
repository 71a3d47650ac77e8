"""A REAL local HTTP receiver for webhook tests (http.server in a thread on 127.0.0.1): it records every
request and answers with scripted replies. Import the ``receiver`` fixture into a conftest to use it."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted reply (status, extra headers, body, delay) or 200."""

    server: ThreadingHTTPServer | None = None
    requests: list[Received] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def reply(self, status=200, *, headers=None, body=b"", delay=0.0, times=1) -> Receiver:
        self.replies.extend([{"status": status, "headers": headers or {}, "body": body, "delay": delay}] * times)
        return self

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.requests) >= n, f"{len(self.requests)} of {n} requests arrived"
        return self.requests


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            script = (
                receiver.replies.pop(0)
                if receiver.replies
                else {"status": 200, "headers": {}, "body": b"", "delay": 0.0}
            )
            time.sleep(script["delay"])
            try:
                self.send_response(script["status"])
                for name, value in script["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(script["body"])))
                self.end_headers()
                self.wfile.write(script["body"])
            except OSError:
                pass  # the sender gave up (a timeout test)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver(settings):
    """A receiver on 127.0.0.1, which the settings allow (MEMADMIN_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8)."""
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    settings.MEMADMIN_WEBHOOK_TIMEOUT_SECONDS = 2
    r = Receiver()
    r.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(r))
    r.server.daemon_threads = True
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
