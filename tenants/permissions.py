"""The one permissions table of the dashboard, and the scoped fetch helpers every tenant view goes through.

Rules (DESIGN.md): not a member of the tenant -> 404 everywhere (no existence oracle);
a member whose role lacks the action -> 403. The memory service re-checks capabilities
from the scope (memadmin/memory/scope.py ROLE_CAPABILITIES) as a backstop.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from tenants.models import Membership, Role

VIEWER, SUPPORT, ADMIN = Role.VIEWER.value, Role.SUPPORT.value, Role.ADMIN.value
ROLES = (VIEWER, SUPPORT, ADMIN)

_EVERYONE = frozenset(ROLES)
_SUPPORT_UP = frozenset({SUPPORT, ADMIN})
_ADMINS = frozenset({ADMIN})

# action -> roles allowed. Every tenant URL names exactly one action (tests/dashboard/test_permission_matrix.py
# walks the URLconf and this table, so a view without an entry, or an entry without a view, fails the suite).
PERMISSIONS: dict[str, frozenset[str]] = {
    # viewer
    "overview": _EVERYONE,
    "browse": _EVERYONE,
    "detail": _EVERYONE,
    "search": _EVERYONE,
    # support
    "user_page": _SUPPORT_UP,
    "user_export": _SUPPORT_UP,
    "memory_delete": _SUPPORT_UP,
    "user_delete": _SUPPORT_UP,
    "jobs": _SUPPORT_UP,  # job list, job page, receipt
    "job_cancel": _SUPPORT_UP,  # the service also checks the job kind
    "user_erase": _SUPPORT_UP,
    # admin
    "app_export": _ADMINS,
    "app_export_job": _ADMINS,
    "job_download": _ADMINS,
    "app_offboard": _ADMINS,
    "app_offboard_start": _ADMINS,
    "audit": _ADMINS,
    "members": _ADMINS,
    "member_change": _ADMINS,
    "link_manage": _ADMINS,
    "api_keys": _ADMINS,
    "api_key_change": _ADMINS,
}

# Actions that change something: POST-only, and the ones a read-only member gets 403 for.
MUTATIONS = frozenset({"memory_delete", "user_delete", "member_change", "link_manage", "api_key_change"})
# Background jobs (tenants/views/jobs.py).
MUTATIONS |= frozenset({"job_cancel", "user_erase", "app_export_job", "app_offboard_start"})


def can(membership: Membership | None, action: str) -> bool:
    if membership is None:
        return False
    return membership.role in PERMISSIONS[action]


def get_membership_or_404(request, tenant_slug: str) -> Membership:
    """The viewer's membership of this tenant; a tenant they do not belong to does not exist for them."""
    if not request.user.is_authenticated:
        raise Http404("No such tenant.")
    try:
        return Membership.objects.select_related("tenant", "user").get(user=request.user, tenant__slug=tenant_slug)
    except Membership.DoesNotExist:
        raise Http404("No such tenant.") from None


def require(membership: Membership, action: str) -> None:
    if action not in PERMISSIONS:
        raise KeyError(f"{action!r} is not in the permissions table")
    if not can(membership, action):
        raise PermissionDenied(f"Your role ({membership.role}) cannot do this in {membership.tenant.name}.")


def allowed_actions(membership: Membership) -> frozenset[str]:
    """For templates: which buttons and nav entries to show."""
    return frozenset(action for action in PERMISSIONS if can(membership, action))
