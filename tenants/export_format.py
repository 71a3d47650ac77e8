"""One row layout for memory exports, shared by the streamed downloads and the export jobs; the one CSV
cell rule, the one Content-Disposition and the one way a failed streamed export ends."""

from __future__ import annotations

import csv
import json
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from memadmin.memory.audit import audit_record
from memadmin.memory.scope import Scope

logger = logging.getLogger("memadmin.exports")

CSV_COLUMNS = ("id", "app_id", "user_id", "agent_id", "run_id", "memory", "created_at", "updated_at", "hash",
               "metadata", "history")  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Appended when a streamed export fails after its headers went out: not JSON, not a CSV row anyone could take
# for data, so neither a program nor a person mistakes the truncated file for a whole one.
EXPORT_FAILED_MARKER = "!!! EXPORT FAILED"


def dump_json(item: dict) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)


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
    """A file for csv.writer that hands each line straight back, so a streamed CSV accumulates nothing."""

    def write(self, value):
        return value


def csv_row(item: dict) -> list:
    """Plain columns as they are; metadata and history as JSON so a CSV keeps everything the JSON has."""
    row = []
    for column in CSV_COLUMNS:
        value = item.get(column)
        if column in ("metadata", "history"):
            value = dump_json(value if value is not None else ({} if column == "metadata" else []))
        row.append("" if value is None else value)
    return row


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
        if scope is not None:
            audit_record(scope=scope, action="export.failed", details={"export": what, "error": type(exc).__name__,
                         "chunks_sent": sent})  # fmt: skip
        yield (f"\n{EXPORT_FAILED_MARKER}: this export stopped because of an error and is incomplete. "
               "Nothing after this line is data; export again.\n").encode()  # fmt: skip
