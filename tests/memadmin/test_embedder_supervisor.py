"""What the master logs when the embedder process ends: how it ended, never "exited with 0" after a SIGKILL."""

import os
import signal
import subprocess
import sys

from memadmin.gunicorn_conf import exit_description


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def test_a_killed_process_is_said_to_be_killed():
    process = _sleeper()
    process.send_signal(signal.SIGKILL)
    assert exit_description(process) == "was killed by signal 9"
    assert process.returncode == -9


def test_a_process_reaped_by_someone_else_is_said_to_be_gone():
    process = _sleeper()
    process.send_signal(signal.SIGKILL)
    os.waitpid(process.pid, 0)  # what gunicorn's SIGCHLD handler does to any child that ends
    assert process.wait() == 0  # the lie Popen tells in that case
    process = _sleeper()
    process.send_signal(signal.SIGKILL)
    os.waitpid(process.pid, 0)
    assert exit_description(process) == "is gone, exit status unknown (the master reaped it first)"


def test_an_ordinary_exit_keeps_its_status():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert exit_description(process) == "exited with status 3"
