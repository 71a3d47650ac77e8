"""The dashboard's permission table (URL name -> capability) and the membership lookup behind every tenant view.

Who has which capability is decided in ONE place, memadmin/memory/capabilities.py. Rules (docs/security.md
"Tenancy and scope"): not a member of the tenant -> 404 everywhere (no existence oracle); a member whose role
lacks the capability -> 403.
tests/security/test_access_matrix.py walks the URLconf: a tenant URL without an entry here fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from memadmin.memory import capabilities as cap
from memadmin.memory.capabilities import STAFF_ROLES, capabilities_of, role_can
from tenants.models import Membership

ROLES = STAFF_ROLES

URL_CAPABILITIES: dict[str, str] = {
    "overview": cap.READ,
    "memories": cap.READ,
    "memory": cap.READ,
    "memory_delete": cap.DELETE,
    "memory_edit": cap.EDIT,
    "memory_edit_save": cap.EDIT,
    "app": cap.READ,  # admin-only parts (index health, export, offboard) are shown by capability
    "app_export": cap.EXPORT_APP,
    "app_pause": cap.PAUSE_APP,
    "app_resume": cap.PAUSE_APP,
    "users": cap.READ_USER,
    "user": cap.READ_USER,
    "user_suggest": cap.READ_USER,
    "user_export": cap.EXPORT,
    "user_delete": cap.DELETE,
    "user_erase": cap.DELETE,
    "user_run_delete": cap.DELETE,
    "user_agent_delete": cap.DELETE,
    "link_issue": cap.MANAGE_LINKS,
    "link_revoke": cap.MANAGE_LINKS,
    "erasures": cap.READ_RECEIPTS,
    "erasure_receipt": cap.READ_RECEIPTS,
    "erasure_public_key": cap.READ_RECEIPTS,
    "links": cap.MANAGE_LINKS,
    # Every member sees their own actions there; the whole log is for read_audit (tenants/views/audit.py).
    "audit": cap.READ,
    "audit_csv": cap.READ,
    "members": cap.MANAGE_MEMBERS,
    "member_add": cap.MANAGE_MEMBERS,  # sends an invitation (tenants/invitations.py)
    "invitation_resend": cap.MANAGE_MEMBERS,
    "invitation_cancel": cap.MANAGE_MEMBERS,
    "member_role": cap.MANAGE_MEMBERS,
    "member_remove": cap.MANAGE_MEMBERS,
    "api_keys": cap.MANAGE_KEYS,
    "api_key_new": cap.MANAGE_KEYS,
    "api_key_revoke": cap.MANAGE_KEYS,
    "api_key_offboarding": cap.MANAGE_KEYS,
    "requests": cap.READ_REQUESTS,
    "jobs": cap.RUN_JOBS,
    "job": cap.RUN_JOBS,
    "job_receipt": cap.RUN_JOBS,
    "job_download": cap.EXPORT_APP,  # the files are whole-app and whole-tenant exports
    "job_cancel": cap.RUN_JOBS,  # the jobs service also checks the capability the job's kind needs
    "app_offboard": cap.OFFBOARD,
    "app_offboard_start": cap.OFFBOARD,
    "app_move": cap.MOVE_APP,
    "app_move_start": cap.MOVE_APP,
    "app_export_job": cap.EXPORT_APP,
    "tenant_export_job": cap.EXPORT_APP,
    "webhooks": cap.MANAGE_WEBHOOKS,
    "webhook_new": cap.MANAGE_WEBHOOKS,
    "webhook": cap.MANAGE_WEBHOOKS,
    "webhook_edit": cap.MANAGE_WEBHOOKS,
    "webhook_test": cap.MANAGE_WEBHOOKS,
    "webhook_rotate": cap.MANAGE_WEBHOOKS,
    "webhook_delete": cap.MANAGE_WEBHOOKS,
    # Agents and runs (tenants/views/entities.py) and bulk selection in memory tables (tenants/views/selection.py).
    "agents": cap.READ,
    "agent": cap.READ,
    "agent_delete": cap.DELETE,
    "runs": cap.READ,
    "run": cap.READ,
    "run_delete": cap.DELETE,
    "selection_delete": cap.DELETE,
    "selection_export": cap.EXPORT_APP,  # the export job: a file of many people's memories
    "deletion_done": cap.DELETE,
    # Imports and registered collections write memories into an app (admins; tenants/views/imports.py).
    "app_import": cap.WRITE,
    "app_import_start": cap.WRITE,
    "collection_register": cap.WRITE,
    "collection_register_save": cap.WRITE,
}


@dataclass(frozen=True)
class NavLink:
    """One entry of the main nav (templates/base.html). Whom it shows to is the capability of its URL in the
    table above, so the nav cannot offer a page its reader would get a 403 for."""

    url_name: str
    label: str
    current_on: frozenset[str]  # the pages (URL names) on which this entry is the current one
    query: str = ""  # appended to the link
    # For two entries on one page (the activity feed and the audit log): current only when this query
    # parameter is present (True) or absent (False).
    when_param: tuple[str, bool] | None = None
    needs: str | None = None  # a capability beyond the URL's: the page serves more people than this entry is for

    @property
    def capability(self) -> str:
        return self.needs or URL_CAPABILITIES[self.url_name]

    def is_current(self, url_name: str | None, params) -> bool:
        if url_name not in self.current_on:
            return False
        if self.when_param is None:
            return True
        name, present = self.when_param
        return bool(params.get(name)) is present


def _nav(url_name: str, label: str, *also_current: str, **options) -> NavLink:
    return NavLink(url_name, label, frozenset({url_name, *also_current}), **options)


NAV: tuple[NavLink, ...] = (
    _nav("overview", "Overview"),
    _nav("memories", "Memories", "memory", "memory_edit", "memory_edit_save"),
    _nav("users", "End users", "user"),
    _nav("agents", "Agents", "agent"),
    _nav("runs", "Runs", "run"),
    _nav("links", "Data links"),
    _nav("audit", "Activity", query="?category=activity", when_param=("category", True), needs=cap.READ_AUDIT),
    _nav("audit", "Audit log", when_param=("category", False)),
    _nav("members", "Members"),
    _nav("api_keys", "API keys"),
    _nav("webhooks", "Webhooks", "webhook"),
    _nav("erasures", "Erasures"),
    _nav("jobs", "Jobs", "job"),
)


# URLs that change something: POST-only, and the ones a read-only member gets 403 for.
MUTATIONS = frozenset(
    {
        "memory_delete",
        "user_delete",
        "user_erase",
        "user_run_delete",
        "user_agent_delete",
        "link_issue",
        "link_revoke",
        "member_add",
        "member_role",
        "member_remove",
        "invitation_resend",
        "invitation_cancel",
        "api_key_new",
        "api_key_revoke",
        "api_key_offboarding",
        "job_cancel",
        "app_offboard_start",
        "app_move_start",
        "app_export_job",
        "tenant_export_job",
        "webhook_new",
        "webhook_edit",
        "webhook_test",
        "webhook_rotate",
        "webhook_delete",
        "app_import_start",
        "collection_register_save",
        "memory_edit_save",
        "app_pause",
        "app_resume",
    }
)
# Agents, runs and bulk selection (kept apart from the set above, which other branches edit too).
MUTATIONS |= frozenset({"agent_delete", "run_delete", "selection_delete", "selection_export"})


def can(membership: Membership | None, capability: str) -> bool:
    return membership is not None and role_can(membership.role, capability)


def get_membership_or_404(request, tenant_slug: str) -> Membership:
    """The viewer's membership of this tenant; a tenant they do not belong to does not exist for them."""
    if not request.user.is_authenticated:
        raise Http404("No such tenant.")
    try:
        return Membership.objects.select_related("tenant", "user").get(user=request.user, tenant__slug=tenant_slug)
    except Membership.DoesNotExist:
        raise Http404("No such tenant.") from None


def require(membership: Membership, capability: str) -> None:
    if not can(membership, capability):
        raise PermissionDenied(f"Your role ({membership.role}) cannot do this in {membership.tenant.name}.")


def allowed_capabilities(membership: Membership) -> frozenset[str]:
    """For templates: which buttons and nav entries to show."""
    return capabilities_of(membership.role)


def nav_links(allowed: frozenset[str], url_name: str | None, params) -> list[dict]:
    """The nav entries this reader may open, in order, each with whether it is the page being shown."""
    return [
        {
            "url_name": link.url_name,
            "label": link.label,
            "query": link.query,
            "current": link.is_current(url_name, params),
        }
        for link in NAV
        if link.capability in allowed
    ]
