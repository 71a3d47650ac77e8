"""Import files: what the hosted Mem0 Platform hands out and what memadmin's own exports write, read as
numbered items for the import job (tenants/jobs/kinds/imports.py ``run_import``).

Accepted, optionally gzipped:
- a JSON document: a list of memories (``get_all`` of the v2 client), ``{"results": [...]}`` (``get_all``
  pages, ``get_memory_export``, memadmin's API export) or ``{"memories": [...]}`` (a platform export schema);
- NDJSON, one memory per line (memadmin's export jobs and ``manage.py offboard --export``).

Every item comes with its position (the line of an NDJSON file, the place in the document's list) so a bad
one can be reported by number; nothing here writes anything.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from rest_framework.exceptions import ParseError

from tenants.export_formats import EXPORT_FAILED_MARKER
from tenants.untrusted_json import loads_untrusted

GZIP_MAGIC = b"\x1f\x8b"
MAX_LISTED_BAD = 1000  # bad rows named one by one in a receipt; the count covers every one
LIST_KEYS = ("results", "memories")


class ImportFileError(Exception):
    """The whole file cannot be imported (not JSON, too large, an export that says it failed)."""


@dataclass
class Item:
    position: int  # NDJSON: the line; JSON: the memory's place in the list, from 1
    data: object = None
    error: str = ""


def max_bytes() -> int:
    return settings.MEMADMIN_IMPORT_MAX_MB * 1024 * 1024


def imports_dir() -> Path:
    return Path(settings.DATA_DIR) / "imports"


def import_store(source: Path, *, move: bool) -> dict:
    """Keep the file under DATA_DIR/imports (0600, the process umask) for the job; {path, bytes, sha256}.
    Refuses a file over MEMADMIN_IMPORT_MAX_MB."""
    size = source.stat().st_size
    if size > max_bytes():
        raise ImportFileError(
            f"The file is {size / 1048576:.1f} MB; imports take at most "
            f"{settings.MEMADMIN_IMPORT_MAX_MB} MB (MEMADMIN_IMPORT_MAX_MB)."
        )
    imports_dir().mkdir(parents=True, exist_ok=True)
    target = imports_dir() / f"{uuid.uuid4().hex}.upload"
    if move:
        shutil.move(str(source), target)
    else:
        shutil.copyfile(source, target)
    digest = hashlib.sha256()
    with open(target, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(target), "bytes": size, "sha256": digest.hexdigest()}


def _read(path: Path) -> bytes:
    """The file's bytes, gunzipped; bounded on both sides so a small gzip cannot unpack into gigabytes."""
    limit = max_bytes()
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        try:
            data = stream.read(limit + 1)
        except (OSError, EOFError) as exc:
            raise ImportFileError(f"The gzip file is damaged: {exc}.") from None
    if len(data) > limit:
        raise ImportFileError(
            f"The file holds more than {settings.MEMADMIN_IMPORT_MAX_MB} MB"
            f"{' once unpacked' if compressed else ''} (MEMADMIN_IMPORT_MAX_MB)."
        )
    return data


def _ndjson(data: bytes) -> Iterator[Item]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if line.startswith(EXPORT_FAILED_MARKER.encode()):
            raise ImportFileError(f"Line {number} says the export failed: the file is incomplete. Export again.")
        try:
            yield Item(number, data=loads_untrusted(line))
        except ParseError as exc:
            yield Item(number, error=str(exc.detail))


def _parse_whole(data: bytes):
    if EXPORT_FAILED_MARKER.encode() in data[-4096:]:
        raise ImportFileError("The file ends with a line that says the export failed: it is incomplete. Export again.")
    return loads_untrusted(data)


def _memories_of(document) -> list | None:
    if isinstance(document, dict):
        return next((document[k] for k in LIST_KEYS if isinstance(document.get(k), list)), None)
    return document if isinstance(document, list) else None


def _document(items: list) -> Iterator[Item]:
    for number, item in enumerate(items, start=1):
        yield Item(number, data=item)


def import_items(path: Path) -> tuple[str, Iterator[Item]]:
    """(format, items) of an import file. ImportFileError when the file as a whole cannot be read.

    A file that parses as one JSON document holding a list of memories is JSON; a file starting with "{" that
    does not parse whole is NDJSON (json.loads stops at the end of its first line, so trying costs one line),
    and its lines are then checked one by one."""
    data = _read(Path(path))
    ndjson_like = data.lstrip()[:1] == b"{"
    try:
        document = _parse_whole(data)
    except ParseError as exc:
        if ndjson_like:
            return "ndjson", _ndjson(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise ImportFileError(f"The file is not UTF-8 text (byte {decode_error.start}).") from None
        raise ImportFileError(f"The file is neither NDJSON nor one JSON document: {exc.detail}") from None
    items = _memories_of(document)
    if items is not None:
        return "json", _document(items)
    if ndjson_like and isinstance(document, dict) and not any(k in document for k in LIST_KEYS):
        return "ndjson", _ndjson(data)  # one memory on one line
    raise ImportFileError('The JSON document is not a list of memories, {"results": [...]} or {"memories": [...]}.')
