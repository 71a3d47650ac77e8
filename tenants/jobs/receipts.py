"""Receipts: the proof a deletion job leaves behind. Counts and ids only, never the deleted text."""

from __future__ import annotations

from django.utils import timezone

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
TITLES = {"move_app": "memadmin move receipt", "export_app": "memadmin export receipt",
          "export_tenant": "memadmin export receipt", "import_app": "memadmin import receipt"}  # fmt: skip
LINE_FIELDS = ("memories", "history_rows", "messages", "unindexed", "remaining", "verified_at", "sessions",
               "verification")


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def build_receipt(job, *, per_app: dict[str, dict], verified_at: str | None, status: str = "complete",
                  extra: dict | None = None) -> dict:  # fmt: skip
    finished = job.finished_at or timezone.now()
    lines = {app_id: {k: v for k, v in line.items() if k in LINE_FIELDS} for app_id, line in per_app.items()}
    totals = {name: sum(int(line.get(name) or 0) for line in lines.values())
              for name in ("memories", "history_rows", "messages", "remaining")}  # fmt: skip
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
