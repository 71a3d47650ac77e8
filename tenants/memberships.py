"""Members of a tenant: role changes and removals, and the one rule every path obeys (the members page, Django
admin, the API's project members): a tenant never loses its last admin, since nobody could manage it from the
dashboard afterwards."""

from __future__ import annotations

from django.db import transaction

from memadmin.memory.capabilities import ADMIN, MANAGE_MEMBERS, STAFF_ROLES, SUPPORT, VIEWER, role_can
from memadmin.memory.errors import Conflict, NotFound, ValidationError
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import Membership, Tenant

# Mem0 projects know two roles; memadmin's support role (read, export, delete) has no Mem0 name.
ROLE_FROM_MEM0 = {"READER": VIEWER, "OWNER": ADMIN}
MEM0_ROLE = {VIEWER: "READER", ADMIN: "OWNER", SUPPORT: "SUPPORT"}
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


def role_from_mem0(value) -> str:
    """READER / OWNER (Mem0's names) or a memadmin role (viewer, support, admin)."""
    if isinstance(value, str) and value.upper() in ROLE_FROM_MEM0:
        return ROLE_FROM_MEM0[value.upper()]
    if value in STAFF_ROLES:
        return value
    raise ValidationError("role must be READER or OWNER (Mem0), or viewer, support or admin.", field="role")


def member_list(*, scope: Scope) -> list[Membership]:
    scope.require(MANAGE_MEMBERS)
    return list(Membership.objects.for_tenant(scope.tenant_id).select_related("user").order_by("user__username"))


def member_id_by_email(*, scope: Scope, email) -> int:
    """The one member of the scope's tenant with this e-mail address (the API names members by address)."""
    scope.require(MANAGE_MEMBERS)
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        raise ValidationError("email is required (the member's e-mail address).", field="email")
    found = list(
        Membership.objects.for_tenant(scope.tenant_id)
        .filter(user__email__iexact=email.strip())
        .values_list("pk", flat=True)[:2]
    )
    if not found:
        raise NotFound("No member of this project has that e-mail address.")
    if len(found) > 1:
        raise ValidationError(
            "Several members share that e-mail address: change them on the Members page.", field="email"
        )
    return found[0]


def _member_for(*, scope: Scope, member_id: int) -> Membership:
    """Locked for the change, and the tenant row with it: two admins demoting each other at once hold different
    membership rows, so only the tenant's lock makes the second wait and see the first's change."""
    Tenant.objects.select_for_update().filter(pk=scope.tenant_id).first()
    try:
        return (
            Membership.objects.for_tenant(scope.tenant_id).select_for_update().select_related("user").get(pk=member_id)
        )
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
        audit_record(
            scope=scope,
            action="member.role",
            details={"member": member.user.get_username(), "email": member.user.email, "role": role, "was": was},
        )
    return member


def membership_remove(*, scope: Scope, member_id: int) -> Membership:
    scope.require(MANAGE_MEMBERS)
    with transaction.atomic():
        member = _member_for(scope=scope, member_id=member_id)
        if not membership_keeps_an_admin(tenant=member.tenant, changing=member, new_role=None):
            raise Conflict(LAST_ADMIN)
        member.delete()
        audit_record(
            scope=scope,
            action="member.remove",
            details={"member": member.user.get_username(), "email": member.user.email, "role": member.role},
        )
    return member
