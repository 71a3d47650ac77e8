"""What every template may ask about its reader: ``can`` (named capability flags: ``can.offboard``) and
``nav_links`` (the main nav, from tenants/permissions.py NAV). Templates never compare capability strings;
tests/test_architecture.py checks that."""

from __future__ import annotations

from django.http import HttpRequest

from memadmin.memory.capabilities import NOTHING
from tenants.permissions import nav_links


def capabilities(request: HttpRequest) -> dict:
    can = getattr(request, "can", NOTHING)  # set by tenant_view; pages outside a tenant grant nothing
    allowed = getattr(request, "allowed", frozenset())
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else None
    return {"can": can, "nav_links": lambda: nav_links(allowed, url_name, request.GET)}
