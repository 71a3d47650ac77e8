"""Memory exports, in one place: the row layout, and the JSON / NDJSON / CSV writers used by the streamed
dashboard downloads (views/common.streamed_export), the API's export endpoint and the job files
(jobs/export_files.write_export). Each writer yields text pieces, so nothing accumulates in memory.

Also the rules every download follows: the one CSV writer (formulas neutralised), the one
Content-Disposition (RFC 6266), and the one way a streamed export that fails midway ends (visibly)."""

from __future__ import annotations

import csv
import json
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime
from urllib.parse import quote

from django.utils import timezone
from django.utils.text import get_valid_filename

from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record

logger = logging.getLogger("memadmin.exports")

FORMATS = ("ndjson", "json", "csv")
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "json": "application/json", "csv": "text/csv; charset=utf-8"}
CSV_COLUMNS = (
    "id",
    "app_id",
    "user_id",
    "agent_id",
    "run_id",
    "memory",
    "created_at",
    "updated_at",
    "hash",
    "metadata",
    "history",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Appended when a streamed export fails after its headers went out: not JSON, not a CSV row anyone could take
# for data, so neither a program nor a person mistakes the truncated file for a whole one.
EXPORT_FAILED_MARKER = "!!! EXPORT FAILED"


def dump_json(item: dict) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)


def csv_row(item: dict) -> list:
    """Plain columns as they are; metadata and history as JSON so a CSV keeps everything the JSON has."""
    row = []
    for column in CSV_COLUMNS:
        value = item.get(column)
        if column in ("metadata", "history"):
            value = dump_json(value if value is not None else ({} if column == "metadata" else []))
        row.append("" if value is None else value)
    return row


def csv_safe(value):
    """A cell a spreadsheet shows as text: strings starting with = + - @ TAB CR get a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class SafeCSVWriter:
    """csv.writer whose every cell goes through csv_safe: the one CSV writer of the project."""

    def __init__(self, fileobj):
        self._writer = csv.writer(fileobj)

    def writerow(self, row: Iterable):
        return self._writer.writerow([csv_safe(cell) for cell in row])


class Echo:
    """csv.writer wants a file; this one hands each line straight back."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable], header: Iterable[str]) -> Iterator[str]:
    writer = SafeCSVWriter(Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def json_array(items: Iterable[dict], *, open_: str = "[\n", sep: str = ",\n", close: str = "\n]\n") -> Iterator[str]:
    yield open_
    for i, item in enumerate(items):
        yield ("" if i == 0 else sep) + dump_json(item)
    yield close


def export_lines(items: Iterable[dict], fmt: str) -> Iterator[str]:
    """A memory export as text pieces, in one of FORMATS."""
    if fmt == "csv":
        return csv_lines((csv_row(item) for item in items), CSV_COLUMNS)
    if fmt == "json":
        return json_array(items)
    return (dump_json(item) + "\n" for item in items)


def export_filename(*parts: str, at: datetime | None = None) -> str:
    """A download's file name without extension: the parts and the date, safe for any file system."""
    stem = "-".join(p for p in parts if p)
    return get_valid_filename(f"{stem}-{(at or timezone.now()):%Y-%m-%d}")[:150]


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients, ``filename*=UTF-8''...`` when the name is not ASCII
    (Django would otherwise encode a non-ASCII header as an RFC 2047 blob no browser reads)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in fallback) or "export"
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def ending_visibly(lines: Iterable[str], *, scope: Scope | None, what: str) -> Iterator[bytes]:
    """Encode a streamed export, and if it fails after the first bytes left (a 200 is already on the wire),
    end it with EXPORT_FAILED_MARKER, log the failure and audit it, instead of a quiet truncated file."""
    sent = 0
    try:
        for line in lines:
            # Encoding here, not in the server, keeps an unencodable item inside this try.
            yield line.encode("utf-8")
            sent += 1
    except Exception as exc:
        logger.exception("Streamed export failed after %d chunks: %s", sent, what)
        # The marker first: the failure may be the database itself, which the audit write needs too.
        yield (
            f"\n{EXPORT_FAILED_MARKER}: this export stopped because of an error and is incomplete. "
            "Nothing after this line is data; export again.\n"
        ).encode()
        if scope is not None:
            try:
                audit_record(
                    scope=scope,
                    action="export.failed",
                    details={"export": what, "error": type(exc).__name__, "chunks_sent": sent},
                )
            except Exception:
                logger.exception("Could not audit the failed export: %s", what)


# A person's own download ("your data"): what they said and when, in words, without the store's bookkeeping
# (content hashes, history row ids, actor ids, roles).
CHANGES = {"ADD": "added", "UPDATE": "changed", "DELETE": "deleted", "NONE": "kept"}


def plain_items(items: Iterable[dict], app_names: dict[str, str]) -> Iterator[dict]:
    """Export items as their person reads them: the memory, the app by its name, the assistant, when it was saved
    and changed, the details the app stored, and each change (before, after, when)."""
    for item in items:
        app_id = item.get("app_id") or ""
        changed = item.get("updated_at") if item.get("updated_at") != item.get("created_at") else None
        yield {
            "memory": item.get("memory"),
            "app": app_names.get(app_id) or app_id,
            "assistant": item.get("agent_id"),
            "conversation": item.get("run_id"),
            "saved_at": item.get("created_at"),
            "changed_at": changed,
            "details": item.get("metadata") or {},
            "changes": [
                {
                    "what": CHANGES.get(str(h.get("event") or "").upper(), str(h.get("event") or "").lower()),
                    "when": h.get("updated_at") or h.get("created_at"),
                    "before": h.get("old_memory"),
                    "after": h.get("new_memory"),
                }
                for h in item.get("history") or ()
                if isinstance(h, dict)
            ],
        }
