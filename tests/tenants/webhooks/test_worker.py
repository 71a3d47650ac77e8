"""End to end through the real job queue: an API write, a real worker process (python manage.py worker), a real
receiver that fails first; the delivery is retried after its back-off and arrives signed."""

import os
import time

import pytest
import standardwebhooks
from django.conf import settings
from django.db import connection

from memadmin.memory import services as memory
from tenants.webhooks.models import WebhookDelivery
from tests.databases import database_url
from tests.support.worker import WorkerProcess, wait_for


@pytest.fixture
def worker(valkey_server, tmp_path, receiver):
    env = {
        **os.environ,
        "VALKEY_URL": valkey_server.url,
        "MEMADMIN_DATA_DIR": str(settings.DATA_DIR),
        "DATABASE_URL": database_url(connection.settings_dict),  # SQLite or the throwaway PostgreSQL
        "MEMADMIN_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS": "2",
        "MEMADMIN_WEBHOOK_TIMEOUT_SECONDS": "3",
        "MEMADMIN_JOB_SWEEP_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    process = WorkerProcess(env, tmp_path / "worker.log").start()
    yield process
    process.stop()
    print((tmp_path / "worker.log").read_text()[-3000:])


@pytest.mark.django_db(transaction=True)
def test_the_job_queue_delivers_retries_after_a_500_and_signs(world, hook, receiver, worker):
    webhook = hook(events=["memory_add"])
    receiver.reply(500)
    record = memory.memory_add(
        scope=world.scope(), app_id="concierge_app", user_id="alice", messages="SECRET-TEXT alice likes tea"
    )[0]
    first, second = receiver.wait_for(2, timeout=90)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    payload = standardwebhooks.Webhook(webhook.secret).verify(second.body, second.headers)
    assert payload["data"]["memory_id"] == record.id and b"SECRET-TEXT" not in second.body
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 2  # back-off
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(state="succeeded").first(), 30, "the delivery row")
    assert (delivery.attempts, delivery.last_status) == (2, 200)
    time.sleep(1)
    assert len(receiver.requests) == 2  # delivered once it succeeded: no duplicate from the sweep
