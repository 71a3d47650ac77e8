"""What every template may ask about its reader: ``can``, the reader's capabilities as named flags
(``can.offboard``). Templates never compare capability strings."""

from __future__ import annotations

from django.http import HttpRequest

from memadmin.memory.capabilities import NOTHING


def capabilities(request: HttpRequest) -> dict:
    return {"can": getattr(request, "can", NOTHING)}  # set by tenant_view; pages outside a tenant grant nothing
