"""The memory endpoints' bodies: ids, messages, filters, add, list, search, update, delete, history, entities,
batches. Field-level rules that belong to the memory service (id syntax, message roles, reserved metadata keys,
filter operators) are left to it, so the API and the dashboard refuse the same things with the same messages."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

ID_MAX = 128
# What memadmin.memory.ids.clean_id accepts, for the schema: no whitespace, no control characters.
ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": ID_PATTERN}
_ID_FIELDS = ("user_id", "agent_id", "run_id", "app_id")
_CONDITION = {
    "oneOf": [
        {**ID_SCHEMA, "description": 'An exact id, or "*" for any non-null value.'},
        {
            "type": "object",
            "required": ["in"],
            "additionalProperties": False,
            "properties": {"in": {"type": "array", "minItems": 1, "maxItems": 100, "items": ID_SCHEMA}},
        },
    ]
}
_TIME_BOUND = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]}
_TIME = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {op: _TIME_BOUND for op in ("gte", "lte", "gt", "lt")},
}
_FIELD_CONDITIONS = {
    **{name: _CONDITION for name in _ID_FIELDS},
    **{name: _TIME for name in ("created_at", "updated_at")},
}
_CLAUSE = {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": _FIELD_CONDITIONS}
FILTERS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        **_FIELD_CONDITIONS,
        "AND": {"type": "array", "minItems": 1, "items": _CLAUSE, "description": "All of (may nest AND / OR)."},
        "OR": {"type": "array", "minItems": 1, "items": _CLAUSE, "description": "Any of (may nest AND / OR)."},
    },
    "description": "Mem0 Filters v2: AND / OR lists over user_id, agent_id, run_id, app_id (exact value, "
    '"*" = any non-null, {"in": [...]}) and created_at / updated_at ({gte, lte, gt, lt}). Anything else is '
    "refused with 400 naming it.",
    "example": {"AND": [{"user_id": "u_alice"}, {"app_id": "concierge_app"}]},
}


@extend_schema_field(ID_SCHEMA)
class IdField(serializers.CharField):
    """An entity id; its syntax is checked by the memory service (clean_id), like everywhere else."""


def id_field(help_text: str, **kwargs) -> serializers.CharField:
    return IdField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=ID_MAX,
        trim_whitespace=False,
        help_text=help_text,
        **kwargs,
    )


_TEXT = {"type": "string", "minLength": 1, "maxLength": 20000, "pattern": r"\S"}


@extend_schema_field(
    {
        "oneOf": [
            _TEXT,
            {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"type": "string", "enum": ["user", "assistant", "system"]},
                        "content": _TEXT,
                        "name": ID_SCHEMA,
                    },
                },
            },
        ],
        "description": "A text, or chat messages {role, content}. Stored verbatim unless infer=true.",
    }
)
class MessagesField(serializers.JSONField):
    pass


@extend_schema_field(FILTERS_SCHEMA)
class FiltersField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.JSONField):
    pass


class AddRequestSerializer(serializers.Serializer):
    messages = MessagesField()
    user_id = id_field("The end user the memory belongs to (required: every memory belongs to one end user).")
    agent_id = id_field("The agent that wrote it.")
    run_id = id_field("The session / run.")
    app_id = id_field("The app; absent = the tenant's default app; unknown = created if the tenant allows it.")
    metadata = MetadataField(required=False, allow_null=True)
    infer = serializers.BooleanField(
        required=False, default=False, help_text="Extract facts with an LLM (needs MEMADMIN_LLM_PROVIDER)."
    )
    filters = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Entity ids, as the v3 client may send them: {user_id, agent_id, ...}.",
    )
    version = serializers.CharField(required=False, allow_null=True, help_text="Accepted and ignored.")
    output_format = serializers.CharField(required=False, allow_null=True, help_text="Accepted and ignored.")
    async_mode = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="true: the answer names the add's event (GET status_url); "
        "memadmin writes at once, so its status is already SUCCEEDED.",
    )


class MemorySerializer(serializers.Serializer):
    id = serializers.CharField()
    memory = serializers.CharField(allow_blank=True)
    user_id = serializers.CharField(allow_null=True)
    agent_id = serializers.CharField(allow_null=True)
    run_id = serializers.CharField(allow_null=True)
    app_id = serializers.CharField()
    metadata = MetadataField()
    created_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    hash = serializers.CharField(allow_null=True)


class ScoredMemorySerializer(MemorySerializer):
    score = serializers.FloatField(
        help_text="1 - cosine distance, like Mem0; with keyword_search, plus at most 0.05 for the query's words."
    )


class AddedMemorySerializer(MemorySerializer):
    event = serializers.CharField(help_text="ADD (or UPDATE / DELETE with infer=true).")


class AddResponseSerializer(serializers.Serializer):
    results = AddedMemorySerializer(many=True)


class AsyncAddedSerializer(serializers.Serializer):
    message = serializers.CharField()
    status = serializers.CharField(help_text="SUCCEEDED: memadmin writes at once.")
    event_id = serializers.UUIDField()
    status_url = serializers.CharField(help_text="GET it for the event (GET /v1/events/{event_id}/).")
    memories = AddedMemorySerializer(many=True)


class AsyncAddResponseSerializer(serializers.Serializer):
    results = AsyncAddedSerializer(many=True)


def _names(max_items: int, max_chars: int, help_text: str) -> serializers.ListField:
    child = serializers.CharField(max_length=max_chars)
    return serializers.ListField(
        child=child, required=False, allow_null=True, max_length=max_items, help_text=help_text
    )


class ReadOptionsSerializer(serializers.Serializer):
    """The v3 options get_all and search share (tenants/api/platform.py says what each does)."""

    fields = _names(20, 64, 'Only these fields of each result (e.g. ["id", "memory"]; search adds "score").')
    categories = _names(100, 1000, "Tagged with any of these (metadata.categories, as a Mem0 Platform import kept).")
    show_expired = serializers.BooleanField(required=False, allow_null=True, help_text="Nothing expires here.")
    latest_only = serializers.BooleanField(required=False, allow_null=True, help_text="Every memory is its latest.")


class ListRequestSerializer(ReadOptionsSerializer):
    filters = FiltersField(help_text="Required: there is no global bucket.")
    start_date = serializers.CharField(required=False, allow_null=True, help_text="created_at >= (ISO 8601).")
    end_date = serializers.CharField(required=False, allow_null=True, help_text="created_at <= (ISO 8601).")
    page = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, allow_null=True)
    keywords = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=1000,
        help_text="Every word must occur in the memory text (case-insensitive substring).",
    )


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1, default=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=100)


class MemoryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = MemorySerializer(many=True)


class SearchRequestSerializer(ReadOptionsSerializer):
    query = serializers.CharField(max_length=2000)
    filters = FiltersField(help_text="Required: there is no global bucket.")
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=10)
    # Mem0's default: a similarity under 0.1 is noise, not a match.
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.1)
    rerank = serializers.BooleanField(required=False, allow_null=True, help_text="Accepted and ignored.")
    keyword_search = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Hybrid search: the query's words found in a memory's text add to its similarity "
        "(docs/api.md). Off by default, so a plain search means what it means on Mem0.",
    )
    metadata = serializers.DictField(
        required=False, allow_null=True, help_text='Metadata conditions, as filters\' {"metadata": {...}}.'
    )


class SearchResponseSerializer(serializers.Serializer):
    results = ScoredMemorySerializer(many=True)


class UpdateRequestSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_null=True, max_length=20_000, allow_blank=True)
    metadata = MetadataField(required=False, allow_null=True)


class DeletionSerializer(serializers.Serializer):
    message = serializers.CharField()
    deleted = serializers.IntegerField(help_text="Memories deleted.")
    remaining = serializers.IntegerField(help_text="Matching memories still present after the deletion (0).")
    history_deleted = serializers.IntegerField()
    messages_deleted = serializers.IntegerField()
    unindexed_deleted = serializers.IntegerField(help_text="Hashes the index had missed (found by a job's SCAN).")
    per_app = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    verified_at = serializers.DateTimeField(allow_null=True)
    matched = serializers.IntegerField(help_text="Memories the filters matched before the deletion.")
    indexes = serializers.DictField(
        child=serializers.DictField(), help_text="Per app: the index health (FT.INFO) that proves remaining = 0."
    )
    exports_deleted = serializers.IntegerField(
        help_text="Export files deleted because they may have held the erased person's memories."
    )
    receipt_id = serializers.UUIDField(allow_null=True, help_text="The signed erasure receipt (none: nothing matched).")
    receipt_url = serializers.CharField(allow_null=True, help_text="GET it: the signed receipt document.")


class DeleteAllQuerySerializer(serializers.Serializer):
    user_id = id_field("Delete this end user's memories.")
    agent_id = id_field("Delete this agent's memories.")
    run_id = id_field("Delete this run's memories.")
    app_id = id_field("Delete this app's memories.")
    filters = serializers.CharField(
        required=False, allow_blank=True, help_text="Filters v2 as JSON (or as the 2.2 client encodes a dict)."
    )


class HistorySerializer(serializers.Serializer):
    id = serializers.CharField()
    memory_id = serializers.CharField()
    old_memory = serializers.CharField(allow_null=True, allow_blank=True)
    new_memory = serializers.CharField(allow_null=True, allow_blank=True)
    event = serializers.CharField(allow_null=True)
    created_at = serializers.CharField(allow_null=True)
    updated_at = serializers.CharField(allow_null=True)
    is_deleted = serializers.BooleanField()
    actor_id = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)


class EntitySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["user", "agent", "run", "app"])
    total_memories = serializers.IntegerField()


class EntityListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = EntitySerializer(many=True)


class BatchUpdateItemSerializer(serializers.Serializer):
    memory_id = IdField(max_length=ID_MAX)
    text = serializers.CharField(required=False, allow_null=True, max_length=20_000, allow_blank=True)
    metadata = MetadataField(required=False, allow_null=True)


class BatchDeleteItemSerializer(serializers.Serializer):
    memory_id = IdField(max_length=ID_MAX)


class BatchUpdateSerializer(serializers.Serializer):
    memories = BatchUpdateItemSerializer(many=True, allow_empty=False, max_length=1000)


class BatchDeleteSerializer(serializers.Serializer):
    memories = BatchDeleteItemSerializer(many=True, allow_empty=False, max_length=1000)


class BatchResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    updated = serializers.IntegerField(required=False)
    deleted = serializers.IntegerField(required=False)
    remaining = serializers.IntegerField(required=False)
    receipt_id = serializers.UUIDField(required=False, allow_null=True, help_text="A deletion's signed receipt.")
    receipt_url = serializers.CharField(required=False, allow_null=True)
