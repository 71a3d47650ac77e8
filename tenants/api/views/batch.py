"""PUT/DELETE /v1/batch/: many updates or deletions, the whole batch validated before anything is written."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.memory import capabilities as cap
from memadmin.memory import selectors, services
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.ids import clean_id
from memadmin.memory.records import MemoryRecord
from memadmin.memory.scope import Scope
from tenants.api import serializers as s
from tenants.api.auth import request_scope
from tenants.api.views.common import WRITE_ERRORS, receipt_url, validated
from tenants.api.views.memories import update_memory

# --- batch --------------------------------------------------------------------------


def _batch_records(scope: Scope, items: list[dict]) -> list[MemoryRecord]:
    """Every memory of the batch, or NotFound before anything changes."""
    ids = [clean_id(item["memory_id"], "memory_id") for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValidationError(f"Memory ids repeated in the batch: {', '.join(duplicates[:5])}.", field="memories")
    records = []
    for memory_id in ids:
        try:
            records.append(selectors.memory_get(scope=scope, memory_id=memory_id, audit=False))
        except NotFound:
            raise NotFound(f"Memory {memory_id} not found: nothing in the batch was changed.") from None
    return records


def _check_update(item: dict) -> None:
    """What memory_update would refuse, checked up front so a batch fails before its first write."""
    prefix = f"Memory {item['memory_id']}"
    text, metadata = item.get("text"), item.get("metadata")
    if not text and metadata is None:
        raise ValidationError(f"{prefix}: send text and/or metadata.", field="memories")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValidationError(f"{prefix}: metadata must be a JSON object.", field="memories")
        reserved = sorted(services.RESERVED_METADATA & set(metadata))
        if reserved:
            raise ValidationError(
                f"{prefix}: metadata cannot set reserved keys: {', '.join(reserved)}.", field="memories"
            )
        services.check_metadata_size(metadata, where=f"{prefix}: metadata")


@extend_schema(
    methods=["PUT"],
    operation_id="memories_batch_update",
    summary="Update up to 1000 memories; all must be in scope or nothing changes",
    request=s.BatchUpdateSerializer,
    responses={200: s.BatchResultSerializer, **WRITE_ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="memories_batch_delete",
    summary="Delete up to 1000 memories; all must be in scope or nothing changes",
    request=s.BatchDeleteSerializer,
    responses={200: s.BatchResultSerializer, **WRITE_ERRORS},
)
@api_view(["PUT", "DELETE"])
def memory_batch(request) -> Response:
    scope = request_scope(request)
    if request.method == "PUT":
        items = validated(s.BatchUpdateSerializer, request.data)["memories"]
        for item in items:  # the whole batch is valid before anything is written
            _check_update(item)
        records = _batch_records(scope, items)  # 404 for ids outside the scope, before any 403
        scope.require(cap.WRITE)
        for record in records:
            if not scope.app(record.app_id).writable:
                raise Conflict(f"{scope.app(record.app_id).frozen_message()} Nothing in the batch was changed.")
            scope.require_writes(scope.app(record.app_id))
        for done, (item, record) in enumerate(zip(items, records)):
            try:
                update_memory(scope, record.id, item.get("text"), item.get("metadata"), record=record)
            except NotFound:  # deleted while the batch ran: that deletion stands, and the batch stops here
                raise NotFound(
                    f"Memory {record.id} was deleted while the batch ran: the {done} memories before "
                    "it were updated, it and those after it were not."
                ) from None
        return Response({"message": f"Successfully updated {len(records)} memories", "updated": len(records)})
    items = validated(s.BatchDeleteSerializer, request.data)["memories"]
    records = _batch_records(scope, items)
    result = services.memory_delete_batch(scope=scope, memory_ids=[(r.id, r.app_id) for r in records])
    return Response(
        {
            "message": f"Successfully deleted {result.deleted} memories",
            "deleted": result.deleted,
            "remaining": result.remaining,
            "receipt_id": result.receipt_id,
            "receipt_url": receipt_url(result.receipt_id),
        }
    )
