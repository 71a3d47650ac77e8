"""``Idempotency-Key`` on an add: a retry of the same request answers the first answer again and writes nothing.

Kept per principal (an API key, or a staff member's session) for 24 hours in Valkey, through Django's cache, which
every web worker shares. What is kept is a keyed hash of the request and the ids of the memories the first answer
held, never their text or metadata: an erasure must not leave a copy behind. A replay reads those memories again
(their text as it is now); one deleted since is a 409 that says so.

While the first request is being answered, a retry is a 409 ("still being answered"); that marker lives two
minutes, so a worker that died mid-request does not block the key for a day. A first answer that is not a 2xx
(a 400, a 503) is not kept: nothing was written, and the retry runs again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions, status
from rest_framework.response import Response

from memadmin.memory import selectors
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.scope import Scope

HEADER = "Idempotency-Key"
KEEP_SECONDS = 24 * 3600
PENDING_SECONDS = 120
MAX_KEY_CHARS = 255
_MEMORY = "memory_ref"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used for another request."


def _clean_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise ValidationError(f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters.", field=HEADER)
    return key


def _principal(request) -> str:
    api_key = getattr(request.auth, "pk", None)
    return f"key:{api_key}" if api_key is not None else f"user:{request.user.pk}"


def _digest(*parts: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def _fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form body
        data = dict(data.lists())
    return _digest(request.method, request.path, json.dumps(data, sort_keys=True, ensure_ascii=False, default=str))


def _refs(value):
    """The answer with each memory replaced by its id and app (what is kept)."""
    if isinstance(value, dict):
        if {"id", "app_id", "memory"} <= set(value):
            return {_MEMORY: [value["id"], value["app_id"]], "event": value.get("event")}
        return {name: _refs(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_refs(item) for item in value]
    return value


def _answer(value, scope: Scope):
    if isinstance(value, dict):
        if _MEMORY in value:
            memory_id, app_id = value[_MEMORY]
            try:
                record = selectors.memory_get(scope=scope, memory_id=memory_id, app_id=app_id, audit=False)
            except NotFound:
                raise Conflict(
                    f"The request with this {HEADER} added memory {memory_id}, which has since been "
                    "deleted; nothing was written again."
                ) from None
            return {**record.as_dict(), "event": value["event"]}
        return {name: _answer(item, scope) for name, item in value.items()}
    if isinstance(value, list):
        return [_answer(item, scope) for item in value]
    return value


def idempotent(request, scope: Scope, answer: Callable[[], Response]) -> Response:
    """``answer()``, or, for a retry with the same key and request, the first answer again."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return answer()
    name = f"idempotency:{_principal(request)}:{_digest(_clean_key(raw))}"
    fingerprint = _fingerprint(request)
    if cache.add(name, {"fingerprint": fingerprint, "done": False}, PENDING_SECONDS):
        try:
            response = answer()
        except BaseException:
            cache.delete(name)
            raise
        if status.is_success(response.status_code):
            kept = {
                "fingerprint": fingerprint,
                "done": True,
                "status": response.status_code,
                "data": _refs(response.data),
            }
            cache.set(name, kept, KEEP_SECONDS)
        else:
            cache.delete(name)
        return response
    first = cache.get(name)
    if first is None:  # the marker of a first request that failed or timed out just went: this one is first
        return idempotent(request, scope, answer)
    if not hmac.compare_digest(first["fingerprint"], fingerprint):
        raise KeyReused(
            f"This {HEADER} was used in the last 24 hours for a request with another body: "
            "send a new key with a new request."
        )
    if not first["done"]:
        raise Conflict(f"The first request with this {HEADER} is still being answered: retry in a few seconds.")
    return Response(_answer(first["data"], scope), status=first["status"], headers={"Idempotent-Replayed": "true"})
