"""What a write may carry: messages, a memory's text and its metadata, checked before anything is stored."""

from __future__ import annotations

import json

from memadmin.memory.errors import ValidationError
from memadmin.memory.ids import clean_id

RESERVED_METADATA = frozenset(
    {
        "user_id",
        "agent_id",
        "run_id",
        "app_id",
        "memory_id",
        "hash",
        "data",
        "created_at",
        "updated_at",
        "text_lemmatized",
    }
)
IDENTITY_KEYS = frozenset({"user_id", "agent_id", "run_id"})
MAX_MESSAGES = 100
MAX_MESSAGE_CHARS = 20_000
# An edited memory's whole metadata object, as JSON: as much as an import's row may carry, and as deep as a
# filter may nest (a form's JSON is not bounded by the API's request parser).
# One limit for every way metadata comes in (API writes, batch updates, imports, the edit form), so whatever the API
# stored an export carries and an import takes back. Counted as the UTF-8 bytes of its JSON.
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 10
ROLES = ("user", "assistant", "system")


def clean_metadata(metadata) -> dict | None:
    """A write's metadata: an object without identity keys (the API, imports)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a JSON object.", field="metadata")
    reserved = sorted(RESERVED_METADATA & set(metadata))
    if reserved:
        # Mem0 #6655: identity in metadata could move a memory into another scope.
        raise ValidationError(f"metadata cannot set reserved keys: {', '.join(reserved)}.", field="metadata")
    check_metadata_size(metadata)
    return metadata


def check_metadata_size(metadata: dict, *, where: str = "metadata") -> None:
    # surrogatepass: a lone surrogate is refused where it matters (the body parser, the edit form), not here.
    if len(json.dumps(metadata, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
        raise ValidationError(f"{where} is over {MAX_METADATA_BYTES} bytes of JSON.", field="metadata")


def clean_whole_metadata(metadata) -> dict:
    """The whole metadata object of an edited memory: an object without reserved keys, bounded in size and depth."""
    metadata = clean_metadata(metadata if metadata is not None else {})
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise ValidationError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels.", field="metadata")
    try:
        json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("metadata must be valid Unicode text.", field="metadata") from None
    except (TypeError, ValueError):  # NaN and infinite numbers are no JSON; stored, they would break every read
        raise ValidationError("metadata must be plain JSON: no NaN or infinite numbers.", field="metadata") from None
    return metadata


def _depth(value, level: int = 1) -> int:
    if level > MAX_METADATA_DEPTH + 1:
        return level  # deep enough to refuse: no need to walk further
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


def clean_text(text, field: str = "text") -> str:
    """A memory's new text: non-empty, bounded, valid Unicode; stripped."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"{field} must be non-empty.", field=field)
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"{field} is over {MAX_MESSAGE_CHARS} characters.", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} is not valid Unicode text.", field=field) from None
    return text.strip()


def clean_messages(messages) -> list[dict]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise ValidationError("messages must be a non-empty string or list of {role, content}.", field="messages")
    if len(messages) > MAX_MESSAGES:
        raise ValidationError(f"At most {MAX_MESSAGES} messages per call.", field="messages")
    cleaned = []
    for message in messages:
        if not isinstance(message, dict):
            raise ValidationError("Each message must be an object with role and content.", field="messages")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValidationError(f"message role must be one of {', '.join(ROLES)}.", field="messages")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("message content must be non-empty text.", field="messages")
        if len(content) > MAX_MESSAGE_CHARS:
            raise ValidationError(f"message content is over {MAX_MESSAGE_CHARS} characters.", field="messages")
        item = {"role": role, "content": content.strip()}
        if message.get("name"):
            item["name"] = clean_id(message["name"], "name")
        cleaned.append(item)
    if all(m["role"] == "system" for m in cleaned):
        raise ValidationError("messages need at least one user or assistant message.", field="messages")
    return cleaned
