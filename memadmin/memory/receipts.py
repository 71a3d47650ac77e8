"""Erasure receipts: one signed record for every erasure, written where the erasure happens (the memory
service, or the job that ran the deletion engine), so no view can forget one. Counts and ids only, never
memory text.

A receipt's ``body`` is signed with the installation's Ed25519 key over its canonical JSON (sorted keys, no
whitespace, UTF-8). When the disk purge has run (MEMADMIN_ERASURE_PURGE_SECONDS), a second signed document,
the purge attestation, says when; the body itself never changes. docs/receipts.md shows how to verify a
downloaded receipt with `cryptography` alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memadmin.memory import capabilities as cap
from memadmin.memory.errors import NotFound
from memadmin.memory.filters import EVERYTHING, Node, node_to_data, pinned_value
from memadmin.memory.models import ErasureReceipt
from memadmin.memory.scope import Scope

TITLE = "memadmin erasure receipt"
PURGE_TITLE = "memadmin purge attestation"
ALGORITHM = "Ed25519"
KEY_FILE = "receipt_signing_key"
COUNT_FIELDS = ("memories", "history_rows", "messages", "unindexed")

# Kinds of erasure, as a receipt names them.
MEMORY, MEMORIES, RUN, AGENT, USER, OWN_DATA, FILTER, RETENTION, OFFBOARD = (
    "memory",
    "memories",
    "run",
    "agent",
    "user",
    "own_data",
    "filter",
    "retention",
    "offboard",
)
KINDS = {
    MEMORY: "One memory",
    MEMORIES: "A batch of memories",
    RUN: "A run (session)",
    AGENT: "An agent's memories",
    USER: "A person",
    OWN_DATA: "A person's own delete-all",
    FILTER: "Memories matching a filter",
    RETENTION: "Retention expiry",
    OFFBOARD: "App offboarding",
}

_lock = threading.Lock()
_keys: dict[tuple, Ed25519PrivateKey] = {}


# --- the key ---------------------------------------------------------------------------


def _key_from_file(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        # O_EXCL: two processes starting together must not sign with two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                pem = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                fh.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"{path} does not hold an Ed25519 private key")
    return key


def signing_key() -> Ed25519PrivateKey:
    """MEMADMIN_RECEIPT_SIGNING_KEY, else the key created on first use in the data dir (0600)."""
    seed = settings.MEMADMIN_RECEIPT_SIGNING_KEY
    path = Path(settings.DATA_DIR) / KEY_FILE
    cache_key = (seed, str(path))
    with _lock:
        if cache_key not in _keys:
            _keys[cache_key] = Ed25519PrivateKey.from_private_bytes(seed) if seed else _key_from_file(path)
        return _keys[cache_key]


def public_key_pem() -> str:
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def key_id(public_key: Ed25519PublicKey | None = None) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key: names the key a receipt was signed with."""
    public_key = public_key or signing_key().public_key()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sign(value: dict) -> dict:
    signature = signing_key().sign(canonical(value))
    return {"algorithm": ALGORITHM, "key_id": key_id(), "value": base64.b64encode(signature).decode("ascii")}


# --- verification ------------------------------------------------------------------------


class ReceiptInvalid(Exception):
    """The document is not a receipt this key signed, or something in it changed since."""


def receipt_verify(document, public_key: Ed25519PublicKey | None = None) -> dict:
    """Check a downloaded receipt (receipt_document's shape) against a public key (default: this
    installation's). Returns the body; raises ReceiptInvalid saying what failed."""
    public_key = public_key or signing_key().public_key()
    if not isinstance(document, dict) or not isinstance(document.get("receipt"), dict):
        raise ReceiptInvalid("This is not a memadmin erasure receipt (no 'receipt' object).")
    parts = [("receipt", document["receipt"], document.get("signature"))]
    purge = document.get("purge")
    if purge is not None:
        if not isinstance(purge, dict):
            raise ReceiptInvalid("The purge attestation is not an object.")
        parts.append(("purge attestation", purge.get("attestation"), purge.get("signature")))
        if not isinstance(purge.get("attestation"), dict) or purge["attestation"].get("receipt_id") != document[
            "receipt"
        ].get("id"):
            raise ReceiptInvalid("The purge attestation is not about this receipt.")
    for name, body, signature in parts:
        if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
            raise ReceiptInvalid(f"The {name} has no Ed25519 signature.")
        try:
            raw = base64.b64decode(str(signature.get("value", "")), validate=True)
            public_key.verify(raw, canonical(body))
        except (ValueError, InvalidSignature):
            raise ReceiptInvalid(
                f"The {name}'s signature does not match: it was changed after signing, or signed by another key "
                f"(this key is {key_id(public_key)}, the {name} names {signature.get('key_id')})."
            ) from None
    return document["receipt"]


# --- writing ---------------------------------------------------------------------------------


def erasure_kind(*, actor_kind: str, tree: Node) -> str:
    """What a filtered erasure erased, in the words a person looks for (``tree``: the filters, narrowed)."""
    if actor_kind == "enduser":
        return OWN_DATA
    if pinned_value(tree, "run_id") is not None:
        return RUN
    if pinned_value(tree, "agent_id") is not None:
        return AGENT
    if pinned_value(tree, "user_id") is not None and _only_user(tree):
        return USER
    return FILTER


def _only_user(tree: Node) -> bool:
    parts = getattr(tree, "children", (tree,))
    return all(getattr(part, "field", None) in ("user_id", "app_id") for part in parts)


def _lines(per_app: dict[str, dict]) -> dict[str, dict]:
    return {app_id: {name: int(line.get(name) or 0) for name in COUNT_FIELDS} for app_id, line in per_app.items()}


def receipt_record(
    *,
    tenant_id: int,
    tenant_slug: str,
    kind: str,
    actor: str,
    actor_kind: str,
    role: str,
    per_app: dict[str, dict],
    verification: dict,
    filters: Node | None = None,
    user_id: str | None = None,
    job_id=None,
    status: str = "complete",
    extra_scope: dict | None = None,
) -> ErasureReceipt:
    """Write and sign one receipt. ``per_app`` lines may carry more than counts: only counts are kept."""
    now = timezone.now()
    lines = _lines(per_app)
    receipt = ErasureReceipt(
        tenant_id=tenant_id,
        created_at=now,
        kind=kind,
        status=status,
        actor=actor,
        actor_kind=actor_kind,
        role=role or "",
        user_id=user_id or "",
        purge_due_at=now + timedelta(seconds=settings.MEMADMIN_ERASURE_PURGE_SECONDS),
        job_id=job_id,
    )
    receipt.scope = {
        "filters": node_to_data(filters if filters is not None else EVERYTHING),
        "apps": sorted(lines),
        "user_id": user_id or None,
        **(extra_scope or {}),
    }
    receipt.per_app = lines
    receipt.memories = sum(line["memories"] for line in lines.values())
    receipt.verification = verification
    receipt.body = {
        "type": TITLE,
        "version": 1,
        "id": str(receipt.id),
        "tenant": tenant_slug,
        "kind": kind,
        "status": status,
        "requested_by": {"actor": actor, "actor_kind": actor_kind, "role": role or None},
        "scope": receipt.scope,
        "per_app": lines,
        "totals": {name: sum(line[name] for line in lines.values()) for name in COUNT_FIELDS},
        "verification": verification,
        "created_at": now.isoformat(),
        "purge_due_at": receipt.purge_due_at.isoformat(),
        "job_id": str(job_id) if job_id else None,
    }
    receipt.signature = _sign(receipt.body)
    with transaction.atomic(savepoint=False):
        receipt.save(force_insert=True)
    return receipt


def receipt_for_scope(
    *,
    scope: Scope,
    kind: str,
    per_app: dict[str, dict],
    verification: dict,
    filters: Node | None = None,
    user_id: str | None = None,
) -> ErasureReceipt:
    """A receipt for an erasure the scope's principal just did (the memory service's deletions)."""
    return receipt_record(
        tenant_id=scope.tenant_id,
        tenant_slug=scope.tenant_slug,
        kind=kind,
        actor=scope.actor,
        actor_kind=scope.actor_kind,
        role=scope.role,
        per_app=per_app,
        verification=verification,
        filters=filters,
        user_id=user_id or scope.user_id,
    )


def receipt_mark_purged(*, erased_before: datetime, purged_at: datetime) -> int:
    """The disk purge has removed the text of every erasure made before ``erased_before`` (AOF rewritten,
    history vacuumed): stamp their receipts and sign an attestation of it for each. Returns how many."""
    marked = 0
    pending = ErasureReceipt.objects.filter(created_at__lt=erased_before, purged_at__isnull=True)
    for receipt in pending.only("id", "created_at").iterator():
        attestation = {
            "type": PURGE_TITLE,
            "receipt_id": str(receipt.id),
            "purged_at": purged_at.isoformat(),
            "erased_before": erased_before.isoformat(),
        }
        marked += ErasureReceipt.objects.filter(pk=receipt.pk, purged_at__isnull=True).update(
            purged_at=purged_at, purge_attestation={"attestation": attestation, "signature": _sign(attestation)}
        )
    return marked


def receipt_document(receipt: ErasureReceipt) -> dict:
    """The downloadable JSON: the signed body, its signature, and the signed purge attestation once there is one.
    Everything a third party needs besides the public key (GET /v1/receipts/public-key/)."""
    return {"receipt": receipt.body, "signature": receipt.signature, "purge": receipt.purge_attestation}


# --- reading -----------------------------------------------------------------------------------


def receipt_list(*, scope: Scope):
    """The scope's receipts, newest first: a tenant's, an end user's own; an app-restricted key's apps only."""
    scope.require(cap.READ_RECEIPTS)
    receipts = ErasureReceipt.objects.for_tenant(scope.tenant_id)
    if scope.user_id is not None:
        receipts = receipts.filter(user_id=scope.user_id)
    return receipts


def receipt_get(*, scope: Scope, receipt_id) -> ErasureReceipt:
    """One receipt in scope, else 404 (before any 403: no existence oracle). In scope: the scope's tenant, its
    person (an end user), and every app the erasure touched is one of the scope's apps, unless the principal
    asked for it itself, or is staff (an offboarded app has left every scope; its receipt stays its requester's)."""
    try:
        receipt_id = uuid.UUID(str(receipt_id))
    except ValueError:
        raise NotFound("Receipt not found.") from None
    receipt = ErasureReceipt.objects.for_tenant(scope.tenant_id).filter(pk=receipt_id).first()
    if receipt is None or not receipt_visible(scope=scope, receipt=receipt):
        raise NotFound("Receipt not found.")
    scope.require(cap.READ_RECEIPTS)
    return receipt


def receipt_visible(*, scope: Scope, receipt: ErasureReceipt) -> bool:
    """Staff see their whole tenant's; an end user only their own person's; a key or a link only receipts of the
    apps it opens, or of what it erased itself."""
    if receipt.tenant_id != scope.tenant_id:
        return False
    if scope.user_id is not None and receipt.user_id != scope.user_id:
        return False
    if scope.actor_kind == "staff" or (receipt.actor == scope.actor and receipt.actor_kind == scope.actor_kind):
        return True
    return set(receipt.scope.get("apps", [])) <= {app.app_id for app in scope.apps}
