"""What the dashboard and the API both need from a request."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.MEMADMIN_TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from: REMOTE_ADDR, unless that is a proxy of MEMADMIN_TRUSTED_PROXIES.

    Then X-Forwarded-For is read from the right, as the proxies wrote it (nginx's $proxy_add_x_forwarded_for
    appends the address it received from): the first hop that is not a trusted proxy is the client. What
    lies to its left came from the client and is never believed. A hop that is not an address ends the walk
    at the last proxy. With no trusted proxies, X-Forwarded-For is not read at all: anyone can send one, and
    it must not reach the audit log or choose whose lockout a failure counts toward."""
    remote = request.META.get("REMOTE_ADDR") or None
    if remote is None or not settings.MEMADMIN_TRUSTED_PROXIES or not _trusted(remote):
        return remote
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _trusted(hop):
            return hop
    return client
