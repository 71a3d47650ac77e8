"""client.project.* (and the deprecated get_project / update_project): the tenant as a Mem0 project, and its
members. Members are for tenant admins signed in to the dashboard only: an API key never reads or changes them
(tenants/api/permissions.py says why in its refusal)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from memadmin.mail import links_shown_to_the_inviter
from memadmin.memory.errors import ValidationError
from tenants.api.auth import is_key_restricted, request_scope
from tenants.api.errors import MailUnavailable
from tenants.api.platform import REFUSED, refuse
from tenants.api.views.common import ERRORS, WRITE_ERRORS
from tenants.invitations import InvitationNotSent, invitation_create
from tenants.memberships import (
    MEM0_ROLE,
    member_id_by_email,
    member_list,
    membership_remove,
    membership_role_change,
    role_from_mem0,
)
from tenants.models import Tenant
from tenants.projects import project_get, project_update

ORG = OpenApiParameter("org_id", str, OpenApiParameter.PATH, description="The tenant's slug.")
PROJECT = OpenApiParameter("project_id", str, OpenApiParameter.PATH, description="The tenant's slug.")
# What the client sends beside the settings (Project._prepare_params): checked by the path, not the body.
ECHOED = ("org_id", "project_id")


def _fields(request, project: dict) -> dict:
    fields = request.query_params.getlist("fields")
    unknown = sorted(set(fields) - set(project))
    if unknown:
        raise ValidationError(f"project.get: unknown field {unknown[0]}; known: {', '.join(project)}.", field="fields")
    return {name: project[name] for name in fields} if fields else project


@extend_schema(
    operation_id="project_create",
    summary="project.create: not supported (a tenant is one project)",
    parameters=[ORG],
    request=None,
    responses=REFUSED,
)
@api_view(["POST"])
def project_create(request, org_id: str):
    refuse("project.create")


@extend_schema(
    methods=["GET"],
    operation_id="project_get",
    parameters=[ORG, PROJECT, OpenApiParameter("fields", str, many=True, description="Only these keys.")],
    summary="project.get: the tenant's settings in Mem0's project shape",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@extend_schema(
    methods=["PATCH"],
    operation_id="project_update",
    parameters=[ORG, PROJECT],
    summary="project.update: set custom_instructions (unrestricted keys and admins)",
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="project_delete",
    parameters=[ORG, PROJECT],
    summary="project.delete: not supported (offboard apps instead)",
    request=None,
    responses=REFUSED,
)
@api_view(["GET", "PATCH", "DELETE"])
def project_detail(request, org_id: str, project_id: str) -> Response:
    scope = request_scope(request)
    if request.method == "GET":
        return Response(_fields(request, project_get(scope=scope, org_id=org_id, project_id=project_id)))
    if request.method == "DELETE":
        project_get(scope=scope, org_id=org_id, project_id=project_id)  # another tenant's project: 404 first
        refuse("project.delete")
    body = request.data if isinstance(request.data, dict) else {}
    changes = {key: value for key, value in body.items() if key not in ECHOED}
    project = project_update(
        scope=scope, org_id=org_id, project_id=project_id, restricted=is_key_restricted(request), changes=changes
    )
    return Response({"message": "Project updated.", **project})


def _member(membership) -> dict:
    return {
        "username": membership.user.get_username(),
        "email": membership.user.email,
        "role": MEM0_ROLE[membership.role],
        "memadmin_role": membership.role,
        "joined_at": membership.created_at,
    }


@extend_schema(
    methods=["GET"],
    operation_id="project_members",
    parameters=[ORG, PROJECT],
    summary="project.get_members (tenant admins' sessions only)",
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="project_member_add",
    parameters=[ORG, PROJECT],
    summary="project.add_member: sends an invitation (READER = viewer, OWNER = admin)",
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiTypes.OBJECT, **WRITE_ERRORS},
)
@extend_schema(
    methods=["PUT"],
    operation_id="project_member_update",
    parameters=[ORG, PROJECT],
    summary="project.update_member: change a member's role",
    request=OpenApiTypes.OBJECT,
    responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS},
)
@extend_schema(
    methods=["DELETE"],
    operation_id="project_member_remove",
    parameters=[ORG, PROJECT, OpenApiParameter("email", str)],
    summary="project.remove_member",
    request=None,
    responses={200: OpenApiTypes.OBJECT, **WRITE_ERRORS},
)
@api_view(["GET", "POST", "PUT", "DELETE"])
def project_members(request, org_id: str, project_id: str) -> Response:
    scope = request_scope(request)
    project_get(scope=scope, org_id=org_id, project_id=project_id)  # another tenant's project: 404
    body = request.data if isinstance(request.data, dict) else {}
    if request.method == "GET":
        return Response({"members": [_member(m) for m in member_list(scope=scope)]})
    if request.method == "DELETE":
        email = request.query_params.get("email") or body.get("email")
        member = membership_remove(scope=scope, member_id=member_id_by_email(scope=scope, email=email))
        return Response({"message": f"{member.user.get_username()} was removed from the project."})
    role = role_from_mem0(body.get("role", "READER" if request.method == "POST" else None))
    if request.method == "PUT":
        member_id = member_id_by_email(scope=scope, email=body.get("email"))
        member = membership_role_change(scope=scope, member_id=member_id, role=role)
        return Response({"message": f"{member.user.get_username()} is now {role}.", "member": _member(member)})
    email = body.get("email")
    try:
        validate_email(email if isinstance(email, str) else "")
    except DjangoValidationError:
        raise ValidationError("email must be an e-mail address.", field="email") from None
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    links: list[str] = []

    def accept_url(token: str) -> str:
        links.append(request.build_absolute_uri(reverse("invitation_accept", args=[token])))
        return links[-1]

    try:
        invitation_create(
            scope=scope, tenant=tenant, email=email, role=role, invited_by=request.user, accept_url=accept_url
        )
    except InvitationNotSent as exc:
        raise MailUnavailable(
            f"The invitation of {email} is saved but the e-mail could not be sent ({exc}); "
            "check the mail settings, then resend it from the Members page."
        ) from None
    if links_shown_to_the_inviter():  # no mail leaves the server: the caller hands the link over, once
        response = Response(
            {
                "message": f"No mail server is configured: give {email} this link yourself; whoever "
                f"opens it with that address joins as {role} ({MEM0_ROLE[role]}).",
                "invite_url": links[-1],
            },
            status=201,
        )
        add_never_cache_headers(response)
        return response
    return Response(
        {"message": f"Invitation sent to {email} as {role} ({MEM0_ROLE[role]}): they join when they accept it."},
        status=201,
    )
