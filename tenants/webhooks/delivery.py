"""Sending one delivery: claim it, sign it, POST it to the checked address, and record how it went.

Run by the job queue (tenants.jobs.tasks.deliver_webhook, enqueued by name after the event's transaction
commits; the periodic sweep re-sends what the broker lost). The WebhookDelivery row is the source of truth:
a Celery message only says "try delivery X if it is due", so a duplicate message is a no-op.

- Retries: a failed attempt (connection error, timeout, any status but 2xx, a redirect) is tried again after
  MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS x 2^(attempt-1) (+ up to 10% jitter, at most an hour), up to
  MEMADMIN_WEBHOOK_MAX_ATTEMPTS attempts; then the delivery has failed.
- One probe at a time: while a webhook's receiver is failing, its other deliveries wait behind the one being
  retried (no attempt is spent on them), so a dead receiver costs one request per back-off step, not one per
  event; the first success releases them, and a probe that gives up hands over to the next one alone.
- Auto-disable: MEMADMIN_WEBHOOK_DISABLE_AFTER failed deliveries in a row (each after all its retries) turn the
  webhook off, cancel what it still had pending, write a ``webhook.disabled`` audit event and show it on the
  dashboard. Any success resets the count.
- Bounded: MEMADMIN_WEBHOOK_TIMEOUT_SECONDS for the whole exchange (connect, TLS, request, response: a
  watchdog closes the socket at the deadline, so a receiver that trickles bytes cannot hold a worker), at
  most 64 KiB of the response read, and nothing of it stored or shown: only the status, the latency and our
  own description of an error (the log would otherwise read internal services back to a tenant admin).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks import Webhook as Signer

from memadmin.celery import app as celery_app
from memadmin.memory import selectors
from memadmin.memory.errors import NotFound, StoreUnavailable
from memadmin.memory.services import audit_record
from tenants.scoping import scope_for_webhook
from tenants.webhooks.models import Webhook, WebhookDelivery
from tenants.webhooks.targets import Target, TargetRefused, target_parse, target_resolve

logger = logging.getLogger("memadmin.webhooks")

DELIVER_TASK = "tenants.jobs.tasks.deliver_webhook"  # by name: this module never imports tasks.py
MAX_RESPONSE_BYTES = 64 * 1024
MAX_DELAY_SECONDS = 3600
DRAIN_BATCH = 500
TEXT_EVENTS = {"memory_add", "memory_update"}
USER_AGENT = "memadmin-webhooks/1"


class AttemptFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None, latency_ms: int | None = None):
        super().__init__(message)
        self.message, self.status, self.latency_ms = message[:300], status, latency_ms


# --- the request -------------------------------------------------------------------------------


def sign(*, secret: str, msg_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers: HMAC-SHA256 of "<id>.<timestamp>.<body>" with the webhook's secret."""
    at = at or datetime.now(dt_timezone.utc)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(msg_id=msg_id, timestamp=at, data=body),
    }


def _connect(target: Target, timeout: float, holder: list) -> socket.socket:
    errors = []
    addresses = target_resolve(target)
    for n, ip in enumerate(addresses, 1):  # every address checked; we connect to a checked one, never re-resolve
        try:
            sock = socket.create_connection((str(ip), target.port), timeout=timeout)
        except OSError as exc:
            # A name's addresses are not shown (targets.address_refusal says why): its rank among them is.
            where = ip if str(ip) == target.host else f"{target.host} (address {n} of {len(addresses)})"
            errors.append(f"{where}: {exc.strerror or type(exc).__name__}")
            continue
        holder.append(sock)
        if target.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
            holder.append(sock)
        return sock
    raise AttemptFailed(f"could not connect ({'; '.join(errors)[:250]})")


def _kill(holder: list) -> None:
    for sock in reversed(holder):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, int]:
    """POST once; (status, latency in ms) or AttemptFailed. Redirects are answers, not followed."""
    timeout = float(settings.MEMADMIN_WEBHOOK_TIMEOUT_SECONDS)
    try:
        target = target_parse(url)
    except Exception as exc:
        raise AttemptFailed(f"invalid url: {exc}") from None
    started = time.monotonic()
    holder: list = []
    watchdog = threading.Timer(timeout, _kill, [holder])
    watchdog.daemon = True
    watchdog.start()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        conn.sock = _connect(target, timeout, holder)
        conn.request("POST", target.path, body=body, headers={**headers, "Host": target.host_header})
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except TargetRefused as exc:
        raise AttemptFailed(f"refused: {exc}") from None
    except AttemptFailed:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise AttemptFailed(f"TLS certificate not valid for {target.host}: {exc.verify_message}") from None
    except (OSError, http.client.HTTPException) as exc:
        elapsed = time.monotonic() - started
        what = "timed out" if elapsed >= timeout * 0.95 or isinstance(exc, TimeoutError) else type(exc).__name__
        raise AttemptFailed(f"{what} after {elapsed:.1f} s", latency_ms=int(elapsed * 1000)) from None
    finally:
        watchdog.cancel()
        conn.close()
        for sock in holder:
            sock.close()
    return status, int((time.monotonic() - started) * 1000)


# --- one delivery ------------------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, with jitter."""
    base = settings.MEMADMIN_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    return min(MAX_DELAY_SECONDS, base * (1 + random.random() / 10))


def payload_for_sending(delivery: WebhookDelivery) -> dict:
    """The stored payload, plus the memory's current text for a webhook that opted in (read now, so no
    text is ever stored in the delivery log, and a memory erased since is sent as null)."""
    payload = dict(delivery.payload)
    webhook = delivery.webhook
    details = payload.get("event_details")
    if webhook.include_text and delivery.event_type in TEXT_EVENTS and details:
        try:
            record = selectors.memory_get(
                scope=scope_for_webhook(webhook), memory_id=details["id"], app_id=payload.get("app_id"), audit=False
            )
            text = record.memory
        except NotFound:
            text = None
        payload["event_details"] = {**details, "data": {"memory": text}}
    return payload


def attempt(delivery: WebhookDelivery) -> tuple[int, int]:
    """Sign and POST ``delivery`` once; (status, ms) for a 2xx, AttemptFailed otherwise."""
    webhook = delivery.webhook
    try:
        payload = payload_for_sending(delivery)
    except StoreUnavailable as exc:
        raise AttemptFailed(f"memory store unreachable while reading the text ({exc.message})") from None
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Memadmin-Event": delivery.event_type,
        **sign(secret=webhook.secret, msg_id=delivery.event_id, body=body),
    }
    status, latency = post(webhook.url, body.encode(), headers)
    if not 200 <= status < 300:
        why = "redirects are not followed" if 300 <= status < 400 else "not 2xx"
        raise AttemptFailed(f"HTTP {status} ({why})", status=status, latency_ms=latency)
    _audit_text_sent(delivery, payload)
    return status, latency


def _audit_text_sent(delivery: WebhookDelivery, payload: dict) -> None:
    """A delivery that carried a memory's text out of memadmin is an access to that person's data: audited
    once it was accepted, so the person's "who looked" list names the webhook."""
    details = payload.get("event_details") or {}
    if (details.get("data") or {}).get("memory") is None:
        return
    user_id = (payload.get("data") or {}).get("user_id")
    webhook = delivery.webhook
    audit_record(
        scope=scope_for_webhook(webhook),
        action="webhook.text_sent",
        app_id=payload.get("app_id") or "",
        user_id=user_id if isinstance(user_id, str) else None,
        memory_ids=[details.get("id")],
        details={"webhook": webhook.pk, "name": webhook.name, "delivery": str(delivery.event_id)},
    )


def _claim(delivery_id) -> WebhookDelivery | None:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.MEMADMIN_WEBHOOK_TIMEOUT_SECONDS * 3 + 10)
    claimed = WebhookDelivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=delivery_id,
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
        is_test=False,
    ).update(lease_until=lease)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("webhook", "webhook__tenant").get(pk=delivery_id)


def webhook_deliver(*, delivery_id) -> str:
    """One attempt at one delivery, if it is due; returns what happened (for logs and tests)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "skipped"
    webhook = delivery.webhook
    now = timezone.now()
    if not webhook.is_active:
        _finish(delivery, WebhookDelivery.State.CANCELLED, error="webhook disabled")
        return WebhookDelivery.State.CANCELLED
    if webhook.backoff_until and webhook.backoff_until > now and delivery.attempts == 0:
        # Its receiver is failing: wait behind the delivery that probes it. The probe's outcome releases the
        # waiting ones (deliveries_release); the time set here is only the sweep's fallback, placed after the
        # probe's next attempt can have finished (so that one does not see a herd arrive with it).
        later = webhook.backoff_until + timedelta(seconds=60 + 3 * settings.MEMADMIN_WEBHOOK_TIMEOUT_SECONDS)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later, lease_until=None, enqueued_at=None)
        return "waiting"
    attempts = delivery.attempts + 1
    try:
        status, latency = attempt(delivery)
    except AttemptFailed as failure:
        return _failed(delivery, attempts, failure)
    _finish(delivery, WebhookDelivery.State.SUCCEEDED, attempts=attempts, status=status, latency=latency)
    Webhook.objects.filter(pk=webhook.pk).update(failed_deliveries=0, backoff_until=None)
    if webhook.backoff_until:
        deliveries_release(webhook_id=webhook.pk)
    return WebhookDelivery.State.SUCCEEDED


def _finish(delivery, state, *, attempts=None, status=None, latency=None, error="") -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=state,
        attempts=attempts if attempts is not None else delivery.attempts,
        last_status=status,
        latency_ms=latency,
        last_error=error[:300],
        finished_at=timezone.now(),
        lease_until=None,
    )


def _failed(delivery: WebhookDelivery, attempts: int, failure: AttemptFailed) -> str:
    webhook = delivery.webhook
    if attempts < settings.MEMADMIN_WEBHOOK_MAX_ATTEMPTS:
        delay = retry_delay(attempts)
        retry_at = timezone.now() + timedelta(seconds=delay)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=attempts,
            last_status=failure.status,
            latency_ms=failure.latency_ms,
            last_error=failure.message,
            next_attempt_at=retry_at,
            lease_until=None,
            enqueued_at=timezone.now(),
        )
        Webhook.objects.filter(pk=webhook.pk).update(backoff_until=retry_at)
        _send(delivery.pk, countdown=delay)
        return "retrying"
    _finish(
        delivery,
        WebhookDelivery.State.FAILED,
        attempts=attempts,
        status=failure.status,
        latency=failure.latency_ms,
        error=failure.message,
    )
    with transaction.atomic():
        # backoff_until = now: the next delivery released below may go (it is the new probe); the others keep
        # waiting until it fails (and pushes the back-off on) or succeeds (and releases them all).
        Webhook.objects.filter(pk=webhook.pk).update(
            failed_deliveries=F("failed_deliveries") + 1, backoff_until=timezone.now()
        )
        webhook.refresh_from_db()
        if webhook.is_active and webhook.failed_deliveries >= settings.MEMADMIN_WEBHOOK_DISABLE_AFTER:
            webhook_disable(
                webhook=webhook,
                reason=f"{webhook.failed_deliveries} deliveries in a row failed after "
                f"{attempts} attempts each (last: {failure.message}).",
            )
    if webhook.is_active:
        deliveries_release(webhook_id=webhook.pk, limit=1)
    return WebhookDelivery.State.FAILED


def webhook_disable(*, webhook: Webhook, reason: str) -> None:
    """Turned off by its failures: nothing more is sent until an admin enables it again."""
    now = timezone.now()
    Webhook.objects.filter(pk=webhook.pk).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300], backoff_until=None
    )
    cancelled = WebhookDelivery.objects.filter(webhook=webhook, state=WebhookDelivery.State.PENDING).update(
        state=WebhookDelivery.State.CANCELLED, finished_at=now, last_error="webhook disabled", lease_until=None
    )
    webhook.is_active, webhook.disabled_at, webhook.disabled_reason = False, now, reason[:300]
    audit_record(
        scope=scope_for_webhook(webhook),
        action="webhook.disabled",
        details={"webhook": webhook.pk, "name": webhook.name, "reason": reason, "cancelled": cancelled},
    )
    logger.warning("Webhook %s (%s) disabled: %s", webhook.pk, webhook.name, reason)


# --- dispatch ---------------------------------------------------------------------------------


def _send(delivery_id, *, countdown: float | None = None) -> bool:
    try:
        celery_app.send_task(
            DELIVER_TASK,
            args=[str(delivery_id)],
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2},
        )
    except Exception as exc:  # kombu raises many kinds; the sweep sends it again
        logger.warning("Could not enqueue webhook delivery %s (%s); the sweep will.", delivery_id, exc)
        return False
    return True


def deliveries_enqueue(ids) -> int:
    sent = 0
    for delivery_id in ids:
        if _send(delivery_id):
            WebhookDelivery.objects.filter(pk=delivery_id).update(enqueued_at=timezone.now())
            sent += 1
    return sent


def deliveries_release(*, webhook_id: int, limit: int = DRAIN_BATCH) -> int:
    """A webhook's receiver answers again: its waiting deliveries are due now (the sweep sends any beyond
    ``limit``). With limit=1, after a probe gave up: the oldest one becomes the next probe."""
    now = timezone.now()
    waiting = WebhookDelivery.objects.filter(
        webhook_id=webhook_id, state=WebhookDelivery.State.PENDING, attempts=0
    ).order_by("created_at")
    ids = list(waiting.values_list("pk", flat=True)[:limit])
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return deliveries_enqueue(ids)


def deliveries_dispatch_due(*, limit: int = 1000) -> int:
    """The sweep's part: due deliveries whose message is missing (broker down, worker lost, or waiting)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MEMADMIN_JOB_LEASE_SECONDS)
    due = WebhookDelivery.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale),
        state=WebhookDelivery.State.PENDING,
        next_attempt_at__lte=now,
        webhook__is_active=True,
        is_test=False,
    ).order_by("next_attempt_at")
    return deliveries_enqueue(list(due.values_list("pk", flat=True)[:limit]))


def deliveries_prune() -> int:
    """Finished deliveries older than MEMADMIN_WEBHOOK_LOG_DAYS leave the log."""
    cutoff = timezone.now() - timedelta(days=settings.MEMADMIN_WEBHOOK_LOG_DAYS)
    deleted, _ = (
        WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(state=WebhookDelivery.State.PENDING).delete()
    )
    return deleted
