"""Run a job in the calling process (a management command) with a progress bar; if a worker got to it first,
follow that worker's progress instead. One loop for offboard, import_mem0 and move_app."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from django.utils import timezone
from tqdm import tqdm

from tenants.jobs.models import Job
from tenants.jobs.tasks import run_job


def job_run_here(job: Job, *, desc: str) -> None:
    """Until the job ends. A job postponed (a move waiting for the app's other jobs) is run again here once due;
    a job that is not due yet and was skipped ends the wait instead of spinning."""
    outcome: dict = {}

    def attempt() -> None:
        outcome["state"] = run_job(job.pk)

    runner = threading.Thread(target=attempt, daemon=True)
    runner.start()
    bar = tqdm(total=None, unit="mem", desc=desc)
    try:
        while True:
            job.refresh_from_db()
            if job.total and bar.total != job.total:
                bar.total = job.total
                bar.refresh()
            bar.update(job.done - bar.n)
            if job.state in Job.TERMINAL_STATES:
                break
            if not runner.is_alive() and job.state == Job.State.SCHEDULED:
                if job.progress.get("postponed"):
                    bar.set_postfix_str(job.progress["postponed"][:60])
                if not job.run_after or job.run_after <= timezone.now():
                    runner = threading.Thread(target=attempt, daemon=True)
                    runner.start()
                elif outcome.get("state") == "skipped":
                    break  # not due, and not postponed by a run here: nothing to wait for in this process
            time.sleep(0.2)
        runner.join(timeout=5)
    finally:
        bar.close()


def receipt_write(job: Job, path: str | None, out) -> None:
    """``--receipt PATH`` of the job commands: the job's receipt as JSON at ``path``, said on ``out``."""
    if path and job.receipt:
        Path(path).write_text(json.dumps(job.receipt, indent=2))
        out.write(f"Receipt written to {path}")
