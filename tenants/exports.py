"""Memory exports, in one place: the row layout, and the JSON / NDJSON / CSV writers used by the streamed
dashboard downloads (views/common.streamed_export), the API's export endpoint and the job files
(jobs/exports.write_export). Each writer yields text pieces, so nothing accumulates in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.utils import timezone
from django.utils.text import get_valid_filename

FORMATS = ("ndjson", "json", "csv")
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "json": "application/json", "csv": "text/csv"}
CSV_COLUMNS = ("id", "app_id", "user_id", "agent_id", "run_id", "memory", "created_at", "updated_at", "hash",
               "metadata", "history")  # fmt: skip


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


class Echo:
    """csv.writer wants a file; this one hands each line straight back."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable], header: Iterable[str]) -> Iterator[str]:
    writer = csv.writer(Echo())
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
