"""Receipts: the proof a deletion job leaves behind. Counts and ids only, never the deleted text."""

from __future__ import annotations

from django.utils import timezone

from memadmin.memory import receipts as erasure_receipts
from memadmin.memory.filters import filter_from_fields, node_from_data
from memadmin.memory.models import ErasureReceipt

VERIFICATION = {
    "offboard_app": "FT.SEARCH count of the app's index and a SCAN of its key prefix, both 0, before and "
    "after the index was dropped; the app's Mem0 history database removed.",
    "erase_user": "FT.SEARCH count in scope 0 on each app's index while healthy (FT.INFO: no new hash indexing "
    "failure, not indexing, nothing missing at the last consistency check); where an index was not healthy, a "
    "SCAN of that app's key prefix deleted and counted the matches (per_app.verification says which).",
    "retention": "FT.SEARCH count in scope 0 on a healthy index, or a SCAN of the app's key prefix where it was "
    "not (per_app.verification says which).",
    "move_app": "SCAN counts of the app's key prefix equal on both stores after the copy; the index built on the "
    "target over them (Mem0's schema) holding as many documents, with no indexing failure; then a SCAN of the "
    "prefix on the source counting 0 keys after its deletion (move.* has the figures).",
}
TITLES = {
    "move_app": "memadmin move receipt",
    "export_app": "memadmin export receipt",
    "export_tenant": "memadmin export receipt",
    "import_app": "memadmin import receipt",
}
LINE_FIELDS = (
    "memories",
    "history_rows",
    "messages",
    "unindexed",
    "remaining",
    "verified_at",
    "sessions",
    "verification",
)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def build_receipt(
    job, *, per_app: dict[str, dict], verified_at: str | None, status: str = "complete", extra: dict | None = None
) -> dict:
    finished = job.finished_at or timezone.now()
    lines = {app_id: {k: v for k, v in line.items() if k in LINE_FIELDS} for app_id, line in per_app.items()}
    totals = {
        name: sum(int(line.get(name) or 0) for line in lines.values())
        for name in ("memories", "history_rows", "messages", "remaining")
    }
    receipt = {
        "receipt": TITLES.get(job.kind, "memadmin deletion receipt"),
        "version": 1,
        "status": status,
        "job_id": str(job.pk),
        "kind": job.kind,
        "tenant": {"slug": job.tenant.slug, "name": job.tenant.name},
        "requested_by": job.requested_by,
        "requested_role": job.params.get("role"),
        "requested_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(finished),
        "duration_seconds": round((finished - job.started_at).total_seconds(), 3) if job.started_at else None,
        "scope": {
            "apps": sorted(lines) or ([job.params["app_id"]] if job.params.get("app_id") else []),
            "user_id": job.params.get("user_id"),
            "policy": {k: job.params[k] for k in ("max_age_days", "idle_run_days") if job.params.get(k)} or None,
        },
        "per_app": lines,
        "totals": totals,
        "remaining": totals["remaining"],
        "verified_at": verified_at,
        "verification": VERIFICATION.get(job.kind),
    }
    if extra:
        receipt.update(extra)
    return receipt


# The principal behind a job, from the role recorded when it was requested (retention has none: the system).
ACTOR_KINDS = {"enduser": "enduser", "api": "api", "admin": "staff", "support": "staff", "viewer": "staff"}


def erasure_receipt_write(job, receipt: dict, status: str = "complete") -> ErasureReceipt | None:
    """The signed erasure receipt of a deletion job (offboarding, erasure, retention), beside the job's own
    receipt; None for other kinds, and for a cancelled job that had deleted nothing yet."""
    if job.kind not in job.DELETION_KINDS or (status != "complete" and not receipt["totals"]["memories"]):
        return None
    role = job.params.get("role") or ""
    actor_kind = ACTOR_KINDS.get(role, "system")
    filters = None
    if job.kind == "offboard_app":
        kind = erasure_receipts.OFFBOARD
    elif job.kind == "retention":
        kind = erasure_receipts.RETENTION
    else:
        filters = (
            node_from_data(job.params["filters"])
            if job.params.get("filters")
            else filter_from_fields(user_id=job.params["user_id"])
        )
        kind = erasure_receipts.erasure_kind(actor_kind=actor_kind, tree=filters)
    per_app = receipt["per_app"] or ({job.params["app_id"]: {}} if job.params.get("app_id") else {})
    return erasure_receipts.receipt_record(
        tenant_id=job.tenant_id,
        tenant_slug=job.tenant.slug,
        kind=kind,
        actor=job.requested_by,
        actor_kind=actor_kind,
        role=role or "system",
        per_app=per_app,
        filters=filters,
        user_id=job.params.get("user_id"),
        job_id=job.pk,
        status=status,
        extra_scope={"policy": receipt["scope"]["policy"]} if receipt["scope"].get("policy") else None,
        verification={
            "method": "job",
            # A cancelled job stopped between batches: what it deleted is counted, nothing was verified.
            "remaining": receipt["remaining"] if status == "complete" else None,
            "verified_at": receipt["verified_at"],
            "per_app": {
                app_id: line.get("verification") or ("scan" if kind == erasure_receipts.OFFBOARD else "index")
                for app_id, line in receipt["per_app"].items()
            },
            "detail": VERIFICATION.get(job.kind),
        },
    )
