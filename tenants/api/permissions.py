"""The API's permission table: endpoint (URL name) x method -> capability.

Who holds which capability is decided in memadmin/memory/capabilities.py, the one table; the memory service
checks the same capability again from the scope. tests/security/test_access_matrix.py walks the URLconf: an
endpoint or method without an entry here fails it, and answers 500 rather than running unchecked.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from memadmin.memory import capabilities as cap
from memadmin.memory.services import audit_record
from tenants.api.auth import request_scope

ENDPOINT_CAPABILITIES: dict[str, dict[str, str]] = {
    "api-ping": {"GET": cap.READ},
    "api-memory-add": {"POST": cap.WRITE},
    "api-memory-search": {"POST": cap.READ},
    "api-memory-list": {"POST": cap.READ},
    "api-memory-delete-all": {"DELETE": cap.DELETE},
    "api-memory-history": {"GET": cap.READ},
    "api-memory-detail": {"GET": cap.READ, "PUT": cap.WRITE, "DELETE": cap.DELETE},
    "api-entities": {"GET": cap.READ},
    "api-entity-delete": {"DELETE": cap.DELETE},
    "api-batch": {"PUT": cap.WRITE, "DELETE": cap.DELETE},
    "api-export-create": {"POST": cap.EXPORT},  # a whole-app export also needs export_app (the view checks)
    "api-export-get": {"POST": cap.EXPORT},
    "api-data-links": {"POST": cap.MANAGE_LINKS},
    "api-job": {"GET": cap.RUN_JOBS},  # as the dashboard's job pages; a restricted key sees jobs within its apps
    "api-receipt": {"GET": cap.READ_RECEIPTS},  # a restricted key sees receipts of its apps (and its own)
    # A restricted key's webhooks are bound to its apps, and it sees only those (tenants/webhooks/services.py).
    "api-webhooks": {"GET": cap.MANAGE_WEBHOOKS, "POST": cap.MANAGE_WEBHOOKS},
    "api-webhook": {"PUT": cap.MANAGE_WEBHOOKS, "DELETE": cap.MANAGE_WEBHOOKS},
    "api-events": {"GET": cap.READ_EVENTS},  # a restricted key sees its apps' events only
    "api-event": {"GET": cap.READ_EVENTS},
    "api-entity-profile": {"GET": cap.READ, "DELETE": cap.DELETE},  # GET: refused (get_profile)
    "api-project-create": {"POST": cap.READ},  # refused (project.create), to anyone who may read
    "api-project": {"GET": cap.READ, "PATCH": cap.MANAGE_PROJECT, "DELETE": cap.READ},  # DELETE: refused
    "api-project-members": {method: cap.MANAGE_MEMBERS for method in ("GET", "POST", "PUT", "DELETE")},
    # Refused (platform-only features) for anyone who may read: the 400 says why.
    "api-summary": {"POST": cap.READ},
    "api-feedback": {"POST": cap.READ},
    "api-profile-jobs": {"POST": cap.READ},
    "api-profile-job": {"GET": cap.READ},
    "api-profile-settings": {"GET": cap.READ, "POST": cap.READ},
}
# mem0.MemoryClient shows only the message: a refusal names the client method it answers.
CLIENT_METHODS = {
    ("api-project", "PATCH"): "project.update",
    ("api-project-members", "GET"): "project.get_members",
    ("api-project-members", "POST"): "project.add_member",
    ("api-project-members", "PUT"): "project.update_member",
    ("api-project-members", "DELETE"): "project.remove_member",
    ("api-events", "GET"): "events",
    ("api-event", "GET"): "event",
}
# Why an API key is refused, where "the api role cannot ..." would not say enough.
KEY_REFUSALS = {
    cap.MANAGE_MEMBERS: "API keys never read or change the members: people join by invitation from the "
    "dashboard's Members page, so a leaked server key can neither list the staff's e-mail addresses nor turn "
    "itself into a person with a login.",
}
# The schema and its documentation pages, and the receipts' public key: no principal, no data.
PUBLIC = frozenset({"api-schema", "api-docs", "api-redoc", "api-receipt-public-key"})


def endpoint_capability(url_name: str, method: str) -> str | None:
    """None for methods the endpoint does not serve (DRF then answers 405)."""
    method = "GET" if method == "HEAD" else method
    return ENDPOINT_CAPABILITIES[url_name].get(method)


class HasCapability(BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.method == "OPTIONS":
            return True
        needed = endpoint_capability(request.resolver_match.url_name, request.method)
        if needed is None:
            return True
        scope = request_scope(request)
        if not scope.can(needed):
            message = (scope.actor_kind == "api" and KEY_REFUSALS.get(needed)) or scope.refusal(needed)
            method = CLIENT_METHODS.get((request.resolver_match.url_name, request.method))
            if scope.actor_kind == "api" and needed in KEY_REFUSALS:
                # A server key reaching for the members is a misconfigured or stolen key: worth a line in the log.
                audit_record(scope=scope, action="api.refused", details={"method": method, "capability": needed})
            raise exceptions.PermissionDenied(f"{method}: {message}" if method else message)
        return True
