"""manage.py serve and gunicorn with several worker processes, on the test DB and the test Valkey.

The state that must hold across workers (the API rate limit, login lockouts) is checked against a real
gunicorn with 4 worker processes, each request on a new connection, and the access log (which names the
worker pid) shows the requests really were spread over them.
"""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest
from django.conf import settings
from django.db import connection

from memadmin.memory.embedded import free_port
from tenants.models import TenantAPIKey
from tests.databases import database_url
from tests.factories import TenantFactory, UserFactory

REPO = Path(__file__).resolve().parents[2]
ACCESS_PID = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) .* pid=<(?P<pid>\d+)>')


def server_env(valkey_server, tmp_path, **extra) -> dict:
    return {
        **os.environ,
        "VALKEY_URL": valkey_server.url,
        "MEMADMIN_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEMADMIN_ACCESS_LOG": str(tmp_path / "access.log"),
        # These tests are about shared state, not embeddings: workers boot in ~2 s instead of ~10, and no
        # embedder process loads the model beside them (the tests that want one turn it on).
        "MEMADMIN_PRELOAD_EMBEDDER": "0",
        "MEMADMIN_EMBEDDER_PROCESS": "0",
        **extra,
    }


class Server:
    def __init__(self, argv: list[str], env: dict, port: int, log: Path):
        self.port, self.log, self.env = port, log, env
        self.process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.base = f"http://127.0.0.1:{port}"

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log.read_text()[-3000:]}"
            try:
                if request(self.base + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not healthy within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def booted_workers(self) -> int:
        return len(re.findall(r"Booting worker with pid", self.log.read_text()))

    def access(self) -> list[dict]:
        path = Path(self.env["MEMADMIN_ACCESS_LOG"])
        return [m.groupdict() for m in ACCESS_PID.finditer(path.read_text())] if path.exists() else []

    def access_since(self, before: int, method: str, path: str, count: int) -> list[dict]:
        """The access lines of ``count`` requests (a worker writes its line just after the response)."""
        deadline = time.monotonic() + 60  # a loaded machine writes late; met, it returns at once
        while True:
            lines = [x for x in self.access()[before:] if x["method"] == method and x["path"] == path]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise AssertionError(f"no exit {timeout}s after TERM:\n{self.log.read_text()[-3000:]}") from None


def request(url: str, *, data: dict | None = None, headers: dict | None = None, opener=None) -> tuple[int, str]:
    body = urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Connection": "close", **(headers or {})})
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def gunicorn(valkey_server, transactional_db, tmp_path):
    servers = []

    def start(workers: int = 4, **env) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:memadmin.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
        extra = {"MEMADMIN_WEB_WORKERS": str(workers), "MEMADMIN_WEB_THREADS": "1", **env}
        server = Server(argv, server_env(valkey_server, tmp_path, **extra), port, tmp_path / "gunicorn.log")
        servers.append(server)
        server.wait_healthy()
        deadline = time.monotonic() + 60
        while server.booted_workers() < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        # /healthz answered from one worker; give the others a moment to finish loading Django.
        for _ in range(3 * workers):
            request(server.base + "/healthz")
        return server

    yield start
    for server in servers:
        server.stop()


def spread(server: Server, calls: list, threads: int = 12) -> list:
    """Run the calls concurrently: with one thread per worker, every worker has to take some."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_api_rate_limit_holds_across_four_workers(gunicorn):
    tenant = TenantFactory(slug="acme")
    _row, key = TenantAPIKey.objects.create_key(name="crm", tenant=tenant)
    server = gunicorn(workers=4, MEMADMIN_API_RATE="20/min")
    before = len(server.access())
    auth = {"Authorization": f"Token {key}"}
    statuses = spread(server, [lambda: request(server.base + "/v1/ping/", headers=auth)[0]] * 60)
    assert Counter(statuses) == {200: 20, 429: 40}
    pings = server.access_since(before, "GET", "/v1/ping/", 60)
    assert len(pings) == 60
    # The kernel hands each connection to whichever worker accepts first, so how many workers get some is up to
    # it. Two are enough for the claim: a worker that answered anything had its own counter at 0 if counters were
    # per process, so it would have let its first 20 through; exactly 20 in all means they share one count.
    assert len({line["pid"] for line in pings}) >= 2, "all 60 requests reached one worker: this proves nothing"


def _login_attempt(server: Server, username: str, password: str) -> tuple[int, str]:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = request(server.base + "/login/", opener=opener)
    assert status == 200, page[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return request(
        server.base + "/login/",
        opener=opener,
        headers={"Referer": server.base + "/login/"},
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
    )


def test_login_lockout_in_one_worker_holds_in_the_others(gunicorn, settings):
    # Hashed with the production hasher: the workers do not run with the tests' fast MD5 one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    UserFactory(username="alice")
    server = gunicorn(workers=4, MEMADMIN_LOGIN_FAILURE_LIMIT="3")
    before = len(server.access())
    failed = spread(server, [lambda: _login_attempt(server, "alice", "wrong")] * 3, threads=3)
    # The failure that reaches the limit is answered with the lockout already, whichever worker counts it.
    assert sorted(status for status, _ in failed) == [200, 200, 429]
    # Which worker takes a connection is the kernel's choice; a quick answer can leave one worker taking
    # all eight. Rounds of locked attempts until they reached two workers (every one of them refused).
    for rounds in range(1, 6):
        attempts = spread(server, [lambda: _login_attempt(server, "alice", "correct-horse-battery")] * 8, threads=8)
        for status, page in attempts:
            assert status in (403, 429) and "Too many failed sign-ins" in page
        posts = server.access_since(before, "POST", "/login/", 3 + 8 * rounds)
        assert len(posts) == 3 + 8 * rounds
        if len({line["pid"] for line in posts[3:]}) >= 2:
            break
    assert len({line["pid"] for line in posts[3:]}) >= 2, "the locked attempts did not reach several workers"


EMBEDDER_STARTED = re.compile(r"Embedder process \(pid (\d+)\) on (\S+)")


def embedder_pids(server: Server, count: int = 1, timeout: float = 90) -> list[int]:
    """The pids of the embedder processes the master started so far (each start logs a line)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [int(m.group(1)) for m in EMBEDDER_STARTED.finditer(server.log.read_text())]
        if len(pids) >= count or time.monotonic() > deadline:
            assert len(pids) >= count, f"no embedder process started:\n{server.log.read_text()[-3000:]}"
            return pids
        time.sleep(0.2)


def test_the_web_workers_embed_in_one_shared_process_and_survive_losing_it(gunicorn):
    import json

    tenant = TenantFactory(slug="acme")
    _row, key = TenantAPIKey.objects.create_key(name="crm", tenant=tenant)
    server = gunicorn(workers=2, MEMADMIN_EMBEDDER_PROCESS="1", MEMADMIN_WEB_THREADS="4")
    (pid,) = embedder_pids(server)
    master = psutil.Process(server.process.pid)
    assert pid in [child.pid for child in master.children()] and "embedder" in psutil.Process(pid).cmdline()
    auth = {"Authorization": f"Token {key}", "Content-Type": "application/json"}

    def call(path, body):
        req = urllib.request.Request(server.base + path, data=json.dumps(body).encode(), headers=auth)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # say why, from the server's own log
            raise AssertionError(f"{path}: {exc.code}\n{server.log.read_text()[-4000:]}") from None

    def search(query):
        return call("/v3/memories/search/", {"query": query, "filters": {"user_id": "alice"}})["results"]

    texts = ["Alice is allergic to peanuts", "Alice's daughter starts school in May", "Alice flies on Fridays"]
    spread(
        server,
        [
            lambda t=t: call("/v3/memories/add/", {"messages": t, "user_id": "alice", "app_id": "crm", "infer": False})
            for t in texts
        ],
    )
    assert search("which foods are dangerous for her")[0]["memory"] == texts[0]
    assert "cannot be reached" not in server.log.read_text()  # every text went through the process

    psutil.Process(pid).kill()  # the process dies: searches go on, embedded in the workers meanwhile...
    for _ in range(4):
        assert search("when does school start")[0]["memory"] == texts[1]
    assert "cannot be reached" in server.log.read_text()
    _first, again = embedder_pids(server, count=2)  # ...and the master starts it again
    assert again != pid and psutil.Process(again).is_running()
    # Said as it happened (a SIGKILL), or as unknown when gunicorn reaped it first: never "exited with 0".
    said = rf"embedder process \(pid {pid}\) (was killed by signal 9|is gone, exit status unknown)"
    assert re.search(said, server.log.read_text())
    server.stop()
    assert not psutil.pid_exists(again)
    socket = EMBEDDER_STARTED.search(server.log.read_text()).group(2)
    assert not os.path.exists(os.path.dirname(socket))  # the socket's directory went with it


def test_serve_reloads_on_hup_and_stops_on_term(valkey_server, transactional_db, tmp_path):
    port = free_port()
    # With the embedder process (its model loads beside the workers): a reload keeps it.
    env = server_env(valkey_server, tmp_path, MEMADMIN_WEB_WORKERS="2", MEMADMIN_EMBEDDER_PROCESS="1")
    argv = [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}", "--no-worker"]
    server = Server(argv, env, port, tmp_path / "serve.log")
    try:
        server.wait_healthy()
        first = server.booted_workers()
        assert first == 2
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while server.booted_workers() < first + 2 and time.monotonic() < deadline:
            assert request(server.base + "/healthz")[0] == 200  # answering throughout the reload
            time.sleep(0.2)
        assert server.booted_workers() == first + 2, server.log.read_text()[-3000:]
        server.wait_healthy()
        assert "Reloading" in server.log.read_text()
        embedder = embedder_pids(server)
        assert len(embedder) == 1  # not started twice by the reload
    finally:
        code = server.stop()
    assert code == 0
    assert not psutil.pid_exists(embedder[0])
    log = server.log.read_text()
    assert "Handling signal: term" in log and "Shutting down: Master" in log
    # The model's ONNX file was there (or made) before gunicorn started: no worker exports it.
    assert "Embedding model on ONNX Runtime: " in log and ".onnx" in log
    with pytest.raises(OSError):
        request(server.base + "/healthz")


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    from memadmin import gunicorn_conf

    for name in ("MEMADMIN_WEB_WORKERS", "MEMADMIN_WEB_THREADS", "MEMADMIN_ACCESS_LOG", "MEMADMIN_BIND"):
        monkeypatch.delenv(name, raising=False)
    try:
        defaults = importlib.reload(gunicorn_conf)
        assert defaults.workers == max(2, len(os.sched_getaffinity(0))) and defaults.threads == 8
        assert defaults.worker_class == "gthread" and defaults.accesslog == "-" and not defaults.preload_app
        assert defaults.bind == "127.0.0.1:8000" and defaults.control_socket_disable
        monkeypatch.setenv("MEMADMIN_WEB_WORKERS", "3")
        monkeypatch.setenv("MEMADMIN_WEB_THREADS", "6")
        monkeypatch.setenv("MEMADMIN_ACCESS_LOG", "off")
        configured = importlib.reload(gunicorn_conf)
        assert (configured.workers, configured.threads, configured.accesslog) == (3, 6, None)
        monkeypatch.setenv("MEMADMIN_WEB_WORKERS", "0")
        with pytest.raises(ImproperlyConfigured, match="MEMADMIN_WEB_WORKERS"):
            importlib.reload(gunicorn_conf)
    finally:
        monkeypatch.undo()
        importlib.reload(gunicorn_conf)


def test_serve_refuses_nonsense_counts():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--workers must be at least 1"):
        call_command("serve", workers=0)


def embedded_env(tmp_path, **extra) -> dict:
    """serve with its own embedded Valkey (no VALKEY_URL) under its own data dir, on the test database."""
    return {
        **os.environ,
        "VALKEY_URL": "",
        "MEMADMIN_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEMADMIN_ACCESS_LOG": str(tmp_path / "access.log"),
        "MEMADMIN_PRELOAD_EMBEDDER": "0",
        "MEMADMIN_EMBEDDER_PROCESS": "0",
        "MEMADMIN_WEB_WORKERS": "2",
        **extra,
    }


def valkey_servers_on(directory: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "valkey-server" in cmdline and process.info["cwd"] == str(directory) and process.info["status"] != "zombie":
            found.append(process.info["pid"])
    return found


def test_serve_restarts_a_killed_embedded_valkey_and_every_process_reconnects_without_a_hup(transactional_db, tmp_path):
    import json

    env = embedded_env(tmp_path)
    port = free_port()
    server = Server([sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"], env, port, tmp_path / "serve.log")
    directory = tmp_path / "data" / "valkey"
    try:
        server.wait_healthy()
        first = json.loads((directory / "server.json").read_text())
        deadline = time.monotonic() + 60  # the job worker uses the supervised server, not one of its own
        while f"Job worker on 127.0.0.1:{first['port']}" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)

        os.kill(first["pid"], signal.SIGKILL)
        began = time.monotonic()
        deadline = began + 30
        while True:
            state = json.loads((directory / "server.json").read_text()) if (directory / "server.json").exists() else {}
            if state.get("pid") not in (None, first["pid"]) and request(server.base + "/healthz")[0] == 200:
                break
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        print(f"/healthz answered 200 again {time.monotonic() - began:.1f} s after the kill")
        assert state["port"] == first["port"]  # the same port: nobody needs a new URL
        # Both web workers answer again (each request on a new connection), without a HUP.
        assert all(request(server.base + "/healthz")[0] == 200 for _ in range(8))
        assert "Reloading" not in server.log.read_text()
        assert valkey_servers_on(directory) == [state["pid"]]  # one server: the worker started none of its own
        assert not Path(f"/proc/{first['pid']}").exists()  # reaped
        log = server.log.read_text()
        assert f"restarting it on port {first['port']}" in log
        # The outage is a line per worker, not one per request.
        assert log.count("Health check: The memory store is unreachable") <= 2

        status = subprocess.run(
            [sys.executable, "manage.py", "valkey", "--status"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"running (pid {state['pid']})" in status.stdout
        assert f"supervised by memadmin serve (pid {server.process.pid})" in status.stdout
        # A second serve on the same data dir is refused before it starts anything.
        second = subprocess.run(
            [sys.executable, "manage.py", "serve", f"127.0.0.1:{free_port()}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"Another memadmin serve (pid {server.process.pid}) already supervises" in second.stderr
        assert valkey_servers_on(directory) == [state["pid"]]
    finally:
        code = server.stop()
    assert code == 0
    assert valkey_servers_on(directory) == []
