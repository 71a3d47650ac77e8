"""The embedded Valkey: one detached server per data dir, reused, stopped cleanly, clear errors."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import valkey
from django.core.management import CommandError, call_command

from memadmin.memory import embedded, store
from memadmin.memory.embedded import EmbeddedServer, EmbeddedValkeyError, pid_alive

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def data_dir(tmp_path):
    """A data dir whose embedded server, if any test started one, is always stopped."""
    yield tmp_path
    EmbeddedServer(tmp_path).stop()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_ensure_starts_once_and_is_reused(data_dir):
    first = EmbeddedServer(data_dir).ensure()
    assert pid_alive(first.pid)
    secret = (data_dir / "valkey" / "password").read_text().strip()
    assert first.url == f"valkey://:{secret}@127.0.0.1:{first.port}"
    assert first.display_url == f"valkey://:****@127.0.0.1:{first.port}"
    again = EmbeddedServer(data_dir).ensure()  # another instance, e.g. another process of the same site
    assert again == first
    state = json.loads((data_dir / "valkey" / "server.json").read_text())
    assert state == {"pid": first.pid, "port": first.port}

    client = valkey.Valkey.from_url(first.url)
    modules = {m[b"name"].decode() for m in client.module_list()}
    assert "search" in modules
    assert client.execute_command("FT.CONFIG", "GET", "DEFAULT_DIALECT") == [[b"DEFAULT_DIALECT", b"2"]]
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    client.set("k", "v")
    client.close()
    aof = data_dir / "valkey" / "appendonlydir"
    assert aof.is_dir() and any(aof.iterdir())


def test_stop_stops_it(data_dir):
    running = EmbeddedServer(data_dir).ensure()
    stopped = EmbeddedServer(data_dir).stop()
    assert stopped == running
    assert not pid_alive(running.pid)
    assert not (data_dir / "valkey" / "server.json").exists()
    assert EmbeddedServer(data_dir).running() is None
    assert EmbeddedServer(data_dir).stop() is None


def test_data_survives_a_restart(data_dir):
    running = EmbeddedServer(data_dir).ensure()
    valkey.Valkey.from_url(running.url).set("kept", "yes")
    EmbeddedServer(data_dir).stop()  # SIGTERM: the AOF is flushed
    again = EmbeddedServer(data_dir).ensure()
    assert again.pid != running.pid
    assert valkey.Valkey.from_url(again.url).get("kept") == b"yes"


def test_stale_pidfile_is_removed_with_a_warning(data_dir, caplog):
    directory = data_dir / "valkey"
    directory.mkdir()
    pid = dead_pid()
    (directory / "server.json").write_text(json.dumps({"pid": pid, "port": embedded.free_port()}))
    with caplog.at_level(logging.WARNING, logger="memadmin.valkey"):
        running = EmbeddedServer(data_dir).ensure()
    assert running.pid != pid and pid_alive(running.pid)
    assert any("stale" in r.message.lower() and str(pid) in r.message for r in caplog.records)
    assert json.loads((directory / "server.json").read_text())["pid"] == running.pid


def test_unreadable_pidfile_is_removed(data_dir, caplog):
    directory = data_dir / "valkey"
    directory.mkdir()
    (directory / "server.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="memadmin.valkey"):
        assert EmbeddedServer(data_dir).running() is None
    assert not (directory / "server.json").exists()
    assert "unreadable" in caplog.text.lower()


def test_configured_port_in_use_is_a_clear_error(data_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EmbeddedValkeyError) as caught:
            EmbeddedServer(data_dir, port).ensure()
    message = str(caught.value)
    assert str(port) in message and "already in use" in message and "MEMADMIN_VALKEY_PORT" in message
    assert not (data_dir / "valkey" / "server.json").exists()


def test_configured_port_is_used(data_dir):
    port = embedded.free_port()
    assert EmbeddedServer(data_dir, port).ensure().port == port


def test_store_uses_the_embedded_server_when_valkey_url_is_unset(data_dir, settings):
    settings.VALKEY_URL = None
    settings.DATA_DIR = data_dir
    settings.MEMADMIN_VALKEY_PORT = 0
    try:
        url = store.valkey_url()
        assert url == EmbeddedServer(data_dir).running().url
    finally:
        store.reset()


# --- manage.py valkey --------------------------------------------------------------------------


def test_valkey_command_status_and_stop(data_dir, settings, capsys):
    settings.VALKEY_URL = None
    settings.DATA_DIR = data_dir
    call_command("valkey", "--status")
    assert capsys.readouterr().out.strip() == "not running"
    running = EmbeddedServer(data_dir).ensure()
    call_command("valkey", "--status")
    out = capsys.readouterr().out
    assert out.startswith(f"running (pid {running.pid}) at valkey://:****@127.0.0.1:{running.port}\n")
    assert running.password not in out and "valkey --url" in out
    call_command("valkey", "--url")
    url = capsys.readouterr().out.strip()
    assert url == running.url and valkey.Valkey.from_url(url).ping()
    call_command("valkey", "--stop")
    assert capsys.readouterr().out.strip() == f"stopped pid {running.pid}"
    assert not pid_alive(running.pid)
    call_command("valkey", "--stop")
    assert capsys.readouterr().out.strip() == "not running"


def test_valkey_command_refuses_when_valkey_url_is_set(settings):
    settings.VALKEY_URL = "valkey://elsewhere:6379"
    with pytest.raises(CommandError, match="VALKEY_URL is set"):
        call_command("valkey", "--status")


def test_valkey_command_refuses_a_second_foreground_server(data_dir, settings):
    settings.VALKEY_URL = None
    settings.DATA_DIR = data_dir
    running = EmbeddedServer(data_dir).ensure()
    with pytest.raises(CommandError, match=f"already running \\(pid {running.pid}\\)"):
        call_command("valkey")


def test_valkey_command_runs_in_the_foreground_and_prints_its_url(data_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("VALKEY_URL", "MEMADMIN_VALKEY_PORT")}
    env.update(MEMADMIN_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "valkey"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "serving valkey://:****@127.0.0.1:" in line, line + process.stderr.read() if process.poll() else line
        running = EmbeddedServer(data_dir).running()
        assert running is not None and running.display_url in line and running.password not in line
        assert valkey.Valkey.from_url(running.url).ping()
        process.send_signal(signal.SIGINT)
        process.wait(20)
        assert "exited with code 0" in process.stdout.read()
        deadline = time.monotonic() + 30  # generous for a loaded machine; met, the loop ends at once
        while pid_alive(running.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(running.pid)
        assert not (data_dir / "valkey" / "server.json").exists()
        assert (data_dir / "valkey" / "appendonlydir").is_dir()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- the password ----------------------------------------------------------------------------


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_server_requires_the_generated_password(data_dir):
    running = EmbeddedServer(data_dir).ensure()
    stranger = valkey.Valkey(port=running.port)
    with pytest.raises(valkey.AuthenticationError, match="(?i)auth"):
        stranger.hgetall("mem0:any:key")
    with pytest.raises(valkey.AuthenticationError, match="(?i)WRONGPASS|invalid"):
        valkey.Valkey(port=running.port, password="guess").ping()
    assert valkey.Valkey.from_url(running.url).ping()
    # Not on the command line, which every local user can read.
    assert running.password not in Path(f"/proc/{running.pid}/cmdline").read_text()


def test_password_config_and_data_are_private(data_dir):
    running = EmbeddedServer(data_dir).ensure()
    client = valkey.Valkey.from_url(running.url)
    client.set("k", "v")
    client.bgrewriteaof()
    directory = data_dir / "valkey"
    assert mode(directory) == 0o700
    assert mode(directory / "password") == 0o600
    assert mode(directory / "valkey.conf") == 0o600
    time.sleep(0.5)
    for path in (directory / "appendonlydir").iterdir():
        assert mode(path) & 0o077 == 0, path
    assert mode(directory / "appendonlydir") & 0o077 == 0


def test_a_server_started_without_a_password_is_secured(data_dir, caplog):
    """An older version's detached server keeps running across an upgrade: set the password live."""
    directory = data_dir / "valkey"
    port = embedded.free_port()
    old = embedded.start_process(directory, port, detach=True)  # no password, like before
    (directory / "server.json").write_text(json.dumps({"pid": old.pid, "port": port}))
    valkey.Valkey(port=port).set("kept", "yes")
    with caplog.at_level(logging.WARNING, logger="memadmin.valkey"):
        running = EmbeddedServer(data_dir).ensure()
    assert running.pid == old.pid  # not restarted: a big store would re-index for minutes
    assert "without a password" in caplog.text
    with pytest.raises(valkey.AuthenticationError):
        valkey.Valkey(port=port).get("kept")
    assert valkey.Valkey.from_url(running.url).get("kept") == b"yes"


def test_status_warns_about_a_server_without_a_password(data_dir, settings, capsys):
    settings.VALKEY_URL = None
    settings.DATA_DIR = data_dir
    directory = data_dir / "valkey"
    port = embedded.free_port()
    old = embedded.start_process(directory, port, detach=True)
    (directory / "server.json").write_text(json.dumps({"pid": old.pid, "port": port}))
    call_command("valkey", "--status")
    assert "requires no password" in capsys.readouterr().out


def test_the_service_and_the_worker_use_the_password(data_dir):
    """A fresh data dir, nothing but the environment: the store and Celery's broker authenticate."""
    env = {k: v for k, v in os.environ.items() if k not in ("VALKEY_URL", "MEMADMIN_VALKEY_PORT")}
    env.update(MEMADMIN_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="memadmin.settings")
    script = (
        "import django; django.setup()\n"
        "from memadmin.memory import store\n"
        "from memadmin.celery import app\n"
        "assert store.client().ping()\n"
        "with app.connection_for_write() as conn: conn.ensure_connection(max_retries=1); print('broker ok')\n"
        "print(app.conf.broker_url.split('@')[0].count(':'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "broker ok" in result.stdout
    running = EmbeddedServer(data_dir).running()
    with pytest.raises(valkey.AuthenticationError):
        valkey.Valkey(port=running.port).ping()


# --- supervision (manage.py serve holds a Supervisor) --------------------------------------------------


def wait_until(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def valkey_servers_on(directory: Path) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        # valkey-server rewrites its title ("valkey-server 127.0.0.1:port") and changes into its --dir.
        if "valkey-server" in cmdline and process.info["cwd"] == str(directory) and process.info["status"] != "zombie":
            found.append(process.info["pid"])
    return found


@pytest.fixture
def supervisor(data_dir):
    supervisor = embedded.Supervisor(EmbeddedServer(data_dir))
    yield supervisor
    supervisor.stop()


def test_a_killed_server_is_restarted_on_the_same_port_and_clients_reconnect(data_dir, supervisor, caplog):
    caplog.set_level(logging.INFO, logger="memadmin.valkey")
    first = supervisor.start()
    # Another process of the site (a web worker, the job worker) finds it through the pidfile.
    seen = EmbeddedServer(data_dir).ensure()
    assert (seen.pid, seen.port) == (first.pid, first.port)
    state = json.loads((data_dir / "valkey" / "server.json").read_text())
    assert state == {"pid": first.pid, "port": first.port, "supervisor": os.getpid()}
    client = valkey.Valkey.from_url(first.url, socket_timeout=2)
    client.set("k", "v")
    time.sleep(1.2)  # appendfsync everysec

    os.kill(first.pid, signal.SIGKILL)
    # While it is down, every other process keeps the same port (no second server on a new one).
    assert EmbeddedServer(data_dir).ensure().port == first.port
    wait_until(lambda: supervisor.restarts == 1)
    assert supervisor.port == first.port and supervisor.pid != first.pid
    assert not Path(f"/proc/{first.pid}").exists()  # reaped: no zombie left behind
    # The client that was connected to the dead server reconnects on its own, and the data came back.
    assert wait_until(lambda: _get(client, "k")) == b"v"
    assert valkey_servers_on(data_dir / "valkey") == [supervisor.pid]
    assert "exited (code -9); restarting it on port" in caplog.text and "is back" in caplog.text
    client.close()


def _get(client, key):
    try:
        return client.get(key)
    except valkey.ValkeyError:
        return None


def test_a_supervised_server_is_not_started_twice_nor_stopped_behind_its_supervisor(
    data_dir, supervisor, settings, capsys
):
    running = supervisor.start()
    with pytest.raises(EmbeddedValkeyError, match=rf"Another memadmin serve \(pid {os.getpid()}\) already supervises"):
        embedded.Supervisor(EmbeddedServer(data_dir)).start()
    with pytest.raises(EmbeddedValkeyError, match="supervised by `manage.py serve`"):
        EmbeddedServer(data_dir).stop()
    with pytest.raises(EmbeddedValkeyError, match="supervised by `manage.py serve`"):
        EmbeddedServer(data_dir).run_foreground()
    settings.VALKEY_URL, settings.DATA_DIR = None, data_dir
    call_command("valkey", "--status")
    out = capsys.readouterr().out
    assert f"running (pid {running.pid})" in out and f"supervised by memadmin serve (pid {os.getpid()})" in out
    with pytest.raises(CommandError, match="stop serve instead"):
        call_command("valkey", "--stop")
    assert valkey_servers_on(data_dir / "valkey") == [running.pid]


def test_a_slow_load_is_waited_for_with_its_progress_in_the_log(data_dir, caplog, monkeypatch):
    server = EmbeddedServer(data_dir)
    running = server.ensure()
    client = valkey.Valkey.from_url(running.url)
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"k{i}", "x" * 100)
    pipe.execute()
    client.close()
    server.stop()
    # 1 ms per key while loading: a 3 s load, far beyond the 1 s a silent server is given.
    (data_dir / "valkey" / "extra.conf").write_text("key-load-delay 1000\n")
    monkeypatch.setattr(EmbeddedServer, "PROGRESS_SECONDS", 0.5)
    caplog.set_level(logging.INFO, logger="memadmin.valkey")
    slow = embedded.Supervisor(EmbeddedServer(data_dir, answer_timeout=1.0))
    began = time.monotonic()
    try:
        started = slow.start()
        took = time.monotonic() - began
        assert took > 1.5, took
        assert "is loading its data (1 s so far)" in caplog.text
        assert valkey.Valkey.from_url(started.url).dbsize() == 3000
    finally:
        slow.stop()


def test_a_start_that_does_not_finish_leaves_no_server_behind(data_dir):
    """serve stopped (or failed) while its Valkey loaded: it used to exit with the server running untracked."""
    with pytest.raises(EmbeddedValkeyError, match="cancelled"):
        embedded.Supervisor(EmbeddedServer(data_dir)).start(cancelled=lambda: True)
    assert valkey_servers_on(data_dir / "valkey") == []
    assert not (data_dir / "valkey" / "server.json").exists()
    assert EmbeddedServer(data_dir).supervisor() is None  # the lock went with it: the next start may run
