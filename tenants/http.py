"""What the dashboard and the API both need from a request."""

from __future__ import annotations

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: a spoofable X-Forwarded-For must not end up in the audit log. Behind a proxy, have the
    # deployment rewrite REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR") or None
