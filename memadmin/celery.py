"""The Celery app: broker and result backend are the memory store's Valkey (embedded unless VALKEY_URL).

The broker URL is worked out on first use, not at import: settings are read
lazily and the embedded server is started (or reused) only by a process that
actually talks to the queue. ``celery -A memadmin worker`` and
``python manage.py worker`` both land here.

The Job row, not Celery, is the source of truth: a message is only a nudge to
"run job X from wherever its progress says". Hence acks_late with
reject_on_worker_lost (a SIGKILLed worker's message goes back to the queue),
prefetch 1 (a worker never hoards jobs it is not running), and the job-level
lease (tenants/jobs/runners.py) and recovery sweep (tenants/jobs/sweep.py) for messages that are lost.
"""

from __future__ import annotations

import os
from datetime import timedelta

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memadmin.settings")

# Celery's keys live beside the memories; this prefix keeps them off mem0:* (and out of every SCAN there).
KEY_PREFIX = "memadmin:celery:"


def kombu_url(url: str) -> str:
    """kombu and Celery speak redis://; a Valkey server speaks the same protocol."""
    for ours, theirs in (("valkeys://", "rediss://"), ("valkey://", "redis://")):
        if url.startswith(ours):
            return theirs + url[len(ours) :]
    return url


class MemadminCelery(Celery):
    def on_configure(self):
        from django.conf import settings

        from memadmin.memory.purge import interval as purge_interval
        from memadmin.memory.store import valkey_url

        url = kombu_url(valkey_url())
        self.conf.update(
            broker_url=url,
            result_backend=url,
            broker_transport_options={
                "global_keyprefix": KEY_PREFIX,
                # Jobs guard themselves with a lease (Job.progress) against a second delivery,
                # so a redelivery after this timeout is harmless.
                "visibility_timeout": 3600,
            },
            result_backend_transport_options={"global_keyprefix": KEY_PREFIX},
            broker_connection_retry_on_startup=True,
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            task_ignore_result=True,
            result_expires=timedelta(days=1),
            task_serializer="json",
            accept_content=["json"],
            timezone=settings.TIME_ZONE,
            worker_hijack_root_logger=False,
            beat_schedule_filename=str(settings.DATA_DIR / "celerybeat-schedule"),
            beat_schedule={
                "jobs-sweep": {
                    "task": "tenants.jobs.tasks.sweep",
                    "schedule": timedelta(seconds=settings.MEMADMIN_JOB_SWEEP_SECONDS),
                },
                "erasure-purge": {
                    "task": "tenants.jobs.tasks.erasure_purge",
                    "schedule": timedelta(seconds=purge_interval()),
                },
                "index-consistency": {
                    "task": "tenants.jobs.tasks.index_consistency",
                    "schedule": timedelta(seconds=settings.MEMADMIN_MONITOR_SECONDS),
                },
            },
        )


app = MemadminCelery("memadmin", include=["tenants.jobs.tasks"])
app.conf.worker_hijack_root_logger = False


def broker_follow_store() -> None:
    """Point an already configured app at the store the settings name now, dropping pooled connections to the
    old one. A process's store does not change in a deployment; a test session points the settings at its own
    throwaway Valkey, possibly after something read the app's configuration (importing the tasks module does)."""
    from memadmin.memory.store import valkey_url

    url = kombu_url(valkey_url())
    app.conf.update(broker_url=url, result_backend=url)
    if app._pool is not None:  # connections to the old store: closed, and the next send makes a pool anew
        app._pool.force_close_all()
        app._pool = None
