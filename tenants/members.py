"""Memberships changed outside an invitation: a role change or a removal, each audited; and the rule that a
tenant always keeps an admin. The dashboard's Members page and the API's project members endpoint share them."""

from __future__ import annotations

from django.db import transaction

from memadmin.memory.audit import audit_record
from memadmin.memory.capabilities import ADMIN, MANAGE_MEMBERS, STAFF_ROLES, SUPPORT, VIEWER, role_can
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.scope import Scope
from tenants.models import Membership

# Mem0 projects know two roles; memadmin's support role (read, export, delete) has no Mem0 name.
ROLE_FROM_MEM0 = {"READER": VIEWER, "OWNER": ADMIN}
MEM0_ROLE = {VIEWER: "READER", ADMIN: "OWNER", SUPPORT: "SUPPORT"}
LAST_ADMIN = "This is the last admin of the tenant; make someone else admin first."


def role_from_mem0(value) -> str:
    """READER / OWNER (Mem0's names) or a memadmin role (viewer, support, admin)."""
    if isinstance(value, str) and value.upper() in ROLE_FROM_MEM0:
        return ROLE_FROM_MEM0[value.upper()]
    if value in STAFF_ROLES:
        return value
    raise ValidationError("role must be READER or OWNER (Mem0), or viewer, support or admin.", field="role")


def keeps_an_admin(tenant, changing: Membership, new_role: str | None) -> bool:
    """A tenant must never lose its last admin: nobody could manage it from the dashboard afterwards."""
    if not role_can(changing.role, MANAGE_MEMBERS) or (new_role and role_can(new_role, MANAGE_MEMBERS)):
        return True
    managers = [role for role in STAFF_ROLES if role_can(role, MANAGE_MEMBERS)]
    return Membership.objects.for_tenant(tenant).filter(role__in=managers).exclude(pk=changing.pk).exists()


def member_list(*, scope: Scope) -> list[Membership]:
    scope.require(MANAGE_MEMBERS)
    return list(Membership.objects.for_tenant(scope.tenant_id).select_related("user").order_by("user__username"))


def _by_email(scope: Scope, email) -> Membership:
    """The one member of the scope's tenant with this e-mail address, locked for the change."""
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        raise ValidationError("email is required (the member's e-mail address).", field="email")
    found = list(
        Membership.objects.for_tenant(scope.tenant_id)
        .select_for_update()
        .select_related("user", "tenant")
        .filter(user__email__iexact=email.strip())[:2]
    )
    if not found:
        raise NotFound("No member of this project has that e-mail address.")
    if len(found) > 1:
        raise ValidationError("Several members share that e-mail address: change them on the Members page.",
                              field="email")  # fmt: skip
    return found[0]


def member_role_set(*, scope: Scope, email: str, role: str) -> Membership:
    scope.require(MANAGE_MEMBERS)
    with transaction.atomic():
        member = _by_email(scope, email)
        if not keeps_an_admin(member.tenant, member, role):
            raise Conflict(LAST_ADMIN)
        was = member.role
        member.role = role
        member.save(update_fields=["role"])
        audit_record(scope=scope, action="member.role",
                     details={"member": member.user.get_username(), "role": role, "was": was})  # fmt: skip
    return member


def member_remove(*, scope: Scope, email: str) -> Membership:
    scope.require(MANAGE_MEMBERS)
    with transaction.atomic():
        member = _by_email(scope, email)
        if not keeps_an_admin(member.tenant, member, None):
            raise Conflict(LAST_ADMIN)
        member.delete()
        audit_record(scope=scope, action="member.remove",
                     details={"member": member.user.get_username(), "was": member.role})  # fmt: skip
    return member
