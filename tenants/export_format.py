"""One row layout for memory exports, shared by the streamed downloads and the export jobs."""

import json

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
