"""Members of a tenant: role changes and removals, and the one rule every path obeys (the members page, Django
admin): a tenant never loses its last admin, since nobody could manage it from the dashboard afterwards."""

from __future__ import annotations

from django.db import transaction

from memadmin.memory.audit import audit_record
from memadmin.memory.capabilities import MANAGE_MEMBERS, STAFF_ROLES, role_can
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.scope import Scope
from tenants.models import Membership

LAST_ADMIN = "This is the last admin of the tenant; make someone else admin first."


def managing_roles() -> list[str]:
    return [role for role in STAFF_ROLES if role_can(role, MANAGE_MEMBERS)]


def membership_keeps_an_admin(*, tenant, changing: Membership | None, new_role: str | None) -> bool:
    """Whether ``tenant`` still has an admin once ``changing`` gets ``new_role`` (None: is removed)."""
    if changing is not None:
        staying = bool(new_role) and role_can(new_role, MANAGE_MEMBERS)
        if staying or not role_can(changing.role, MANAGE_MEMBERS):
            return True
    others = Membership.objects.for_tenant(tenant).filter(role__in=managing_roles())
    if changing is not None:
        others = others.exclude(pk=changing.pk)
    return others.exists()


def _member_for(*, scope: Scope, member_id: int) -> Membership:
    """Locked for the change, so two admins demoting each other at once cannot both succeed."""
    try:
        return Membership.objects.for_tenant(scope.tenant_id).select_for_update().select_related("user").get(
            pk=member_id)  # fmt: skip
    except Membership.DoesNotExist:
        raise NotFound("No such member.") from None


def membership_role_change(*, scope: Scope, member_id: int, role: str) -> Membership:
    scope.require(MANAGE_MEMBERS)
    if role not in STAFF_ROLES:
        raise ValidationError("Choose admin, support or viewer.", field="role")
    with transaction.atomic():
        member = _member_for(scope=scope, member_id=member_id)
        if member.role == role:
            return member
        if not membership_keeps_an_admin(tenant=member.tenant, changing=member, new_role=role):
            raise Conflict(LAST_ADMIN)
        was, member.role = member.role, role
        member.save(update_fields=["role"])
        audit_record(scope=scope, action="member.role",
                     details={"member": member.user.get_username(), "role": role, "was": was})  # fmt: skip
    return member


def membership_remove(*, scope: Scope, member_id: int) -> Membership:
    scope.require(MANAGE_MEMBERS)
    with transaction.atomic():
        member = _member_for(scope=scope, member_id=member_id)
        if not membership_keeps_an_admin(tenant=member.tenant, changing=member, new_role=None):
            raise Conflict(LAST_ADMIN)
        member.delete()
        audit_record(scope=scope, action="member.remove",
                     details={"member": member.user.get_username(), "role": member.role})  # fmt: skip
    return member
