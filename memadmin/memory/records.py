"""Plain values the memory service returns."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from memadmin.memory.filters import TAG_FIELDS

# Mem0 keeps a lemmatised copy of the text in metadata for BM25; it is not user metadata.
_INTERNAL_METADATA = {"text_lemmatized"}


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(float(_text(value))), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _metadata(value) -> dict:
    raw = _text(value)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"_unparsed": raw}
    if "\\ud" in raw.lower():  # a JSON escape of a UTF-16 surrogate: maybe a lone one (not text)
        parsed = _without_lone_surrogates(parsed)
    if not isinstance(parsed, dict):
        return {"_value": parsed}
    return {k: v for k, v in parsed.items() if k not in _INTERNAL_METADATA}


def _without_lone_surrogates(parsed):
    """Mem0 OSS writers can store ``"\\udfff"`` in metadata: shown as "?" rather than failing every read,
    list and export that meets it (the API refuses such text on the way in)."""
    text = json.dumps(parsed, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "replace").decode("utf-8"))
    return parsed


@dataclass
class MemoryRecord:
    id: str
    app_id: str
    memory: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    hash: str | None = None
    score: float | None = None

    @classmethod
    def from_hash(cls, app_id: str, key: str, fields: dict) -> MemoryRecord:
        """Build from a Mem0 hash; identity comes from the TAG fields only, never from metadata."""
        get = {(_text(k)): v for k, v in fields.items()}.get
        memory_id = _text(get("memory_id")) or key.rsplit(":", 1)[-1]
        return cls(
            id=memory_id,
            app_id=app_id,
            memory=_text(get("memory")) or "",
            user_id=_text(get("user_id")) or None,
            agent_id=_text(get("agent_id")) or None,
            run_id=_text(get("run_id")) or None,
            metadata=_metadata(get("metadata")),
            created_at=_timestamp(get("created_at")),
            updated_at=_timestamp(get("updated_at")),
            hash=_text(get("hash")),
        )

    def scope_fields(self) -> dict:
        fields = {name: getattr(self, name) for name in TAG_FIELDS}
        fields["app_id"] = self.app_id
        fields["created_at"] = int(self.created_at.timestamp()) if self.created_at else None
        fields["updated_at"] = int(self.updated_at.timestamp()) if self.updated_at else None
        return fields

    def as_dict(self) -> dict:
        # Built by hand: dataclasses.asdict deep-copies metadata and was half of an export's CPU time.
        data = {
            "id": self.id,
            "app_id": self.app_id,
            "memory": self.memory,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "hash": self.hash,
        }
        if self.score is not None:
            data["score"] = self.score
        return data


@dataclass
class Page:
    items: list[MemoryRecord]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass
class CursorPage:
    """One page of a keyset walk: ``start`` memories came before it, ``next_cursor`` is None on the last."""

    items: list[MemoryRecord]
    total: int
    start: int
    page_size: int
    next_cursor: str | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.items)


@dataclass
class Counts:
    total: int
    per_app: dict[str, int]
    per_agent: list[tuple[str, int]]
    per_user: list[tuple[str, int]]
    users: int = 0
    agents: int = 0
    counted_at: datetime | None = None

    @property
    def apps_with_memories(self) -> int:
        """per_app lists every app in scope, empty ones included (the overview shows them all)."""
        return sum(1 for n in self.per_app.values() if n)


@dataclass
class Entity:
    """An agent or a run, counted by the engine over its memories in the scope (the Agents and Runs pages)."""

    id: str
    count: int
    people: int  # distinct user_ids; a person with memories in two apps is one
    apps: list[str]
    first_write: datetime | None
    last_write: datetime | None


@dataclass
class EntityPage:
    """One page of agents or runs by id; ``next_after`` (the last id shown) is None on the last page."""

    items: list[Entity]
    after: str | None
    next_after: str | None


@dataclass
class DeletionResult:
    deleted: int = 0
    remaining: int = 0
    history_deleted: int = 0
    messages_deleted: int = 0
    unindexed_deleted: int = 0
    per_app: dict[str, dict] = field(default_factory=dict)
    verified_at: datetime | None = None
    # Set when the request could not finish the deletion itself: "large" (over the synchronous limit) or
    # "index_unhealthy" (the index cannot vouch for a count of 0); a job then does it, with a receipt.
    deferred: str | None = None
    matched: int = 0
    indexes: dict[str, dict] = field(default_factory=dict)  # per app: the index health the count relied on
    exports_deleted: int = 0  # export files that may have held the erased person's memories
    receipt_id: str | None = None  # the signed erasure receipt (memadmin/memory/receipts.py)

    def add_app(self, app_id: str, deleted: int, history: int, messages: int, unindexed: int, remaining: int):
        self.per_app[app_id] = {
            "memories": deleted,
            "history_rows": history,
            "messages": messages,
            "unindexed": unindexed,
            "remaining": remaining,
        }
        self.deleted += deleted
        self.history_deleted += history
        self.messages_deleted += messages
        self.unindexed_deleted += unindexed
        self.remaining += remaining

    def as_dict(self) -> dict:
        data = asdict(self)
        data["verified_at"] = self.verified_at.isoformat() if self.verified_at else None
        return data
