"""The Mem0-platform-compatible API: the subset mem0.MemoryClient (mem0ai 2.2) calls, one module per resource.

Thin views: authenticate, build the Scope, validate, call the memory service,
shape the answer like the Mem0 platform does. Every read and write goes
through memadmin.memory (which audits); errors become JSON in errors.py.
"""

from tenants.api.views.batch import memory_batch
from tenants.api.views.entities import entity_delete, entity_list, entity_profile
from tenants.api.views.exports import export_create, export_get
from tenants.api.views.jobs import job_detail
from tenants.api.views.links import data_link_create
from tenants.api.views.memories import (
    memory_add,
    memory_delete_all,
    memory_detail,
    memory_history,
    memory_list,
    memory_search,
)
from tenants.api.views.ping import ping
from tenants.api.views.receipts import receipt_detail, receipt_public_key

__all__ = [
    "data_link_create",
    "entity_delete",
    "entity_list",
    "entity_profile",
    "export_create",
    "export_get",
    "job_detail",
    "memory_add",
    "memory_batch",
    "memory_delete_all",
    "memory_detail",
    "memory_history",
    "memory_list",
    "memory_search",
    "ping",
    "receipt_detail",
    "receipt_public_key",
]
