"""The tenant as a Mem0 "project": what client.project.get() reads and project.update() may change.

A memadmin tenant is one Mem0 project (org_id = project_id = its slug). Of Mem0's project settings only
custom_instructions has a meaning here: the instructions the extraction LLM follows on infer=true adds."""

from __future__ import annotations

from memadmin.memory.capabilities import MANAGE_PROJECT
from memadmin.memory.errors import NotFound, PermissionDenied, ValidationError
from memadmin.memory.scope import Scope
from memadmin.memory.services import audit_record
from tenants.models import CUSTOM_INSTRUCTIONS_MAX, App, Tenant

# Mem0 project settings memadmin cannot honour, and why: refused by name rather than stored and ignored.
UNSUPPORTED_SETTINGS = {
    "custom_categories": "memadmin does not categorise memories",
    "multilingual": "memadmin stores text as it is sent, in whatever language",
    "decay": "memadmin's search ranks by similarity alone",
    "agent_custom_instructions": "every memory here belongs to an end user; custom_instructions apply to every "
    "infer=true add",
    "memory_depth": "memadmin has no extraction depth setting",
    "usecase_setting": "memadmin has no use-case presets",
}


def project_get(*, scope: Scope, org_id: str, project_id: str) -> dict:
    """The caller's own tenant in Mem0's project shape; any other org/project id is not found."""
    tenant = _own(scope, org_id, project_id)
    apps = [app.app_id for app in scope.apps]
    default = App.objects.filter(tenant=tenant, is_default=True, app_id__in=apps).values_list("app_id", flat=True)
    return {
        "id": tenant.slug,
        "name": tenant.name,
        "org_id": tenant.slug,
        "project_id": tenant.slug,
        "custom_instructions": tenant.custom_instructions or None,
        "custom_categories": None,
        "multilingual": False,
        "decay": False,
        "auto_create_apps": tenant.auto_create_apps,
        "apps": apps,
        "default_app": default.first(),
        "created_at": tenant.created_at,
    }


def project_update(*, scope: Scope, org_id: str, project_id: str, restricted: bool, changes: dict) -> dict:
    """Set (or clear, with None or "") the tenant's custom_instructions; audited with the length only."""
    scope.require(MANAGE_PROJECT)
    _own(scope, org_id, project_id)
    if restricted:
        raise PermissionDenied("project.update: a key restricted to some apps cannot change a tenant-wide setting.")
    refused = sorted(set(changes) & set(UNSUPPORTED_SETTINGS))
    if refused:
        name = refused[0]
        raise ValidationError(
            f"project.update: {name} is not supported by memadmin: {UNSUPPORTED_SETTINGS[name]}.", field=name
        )
    unknown = sorted(set(changes) - {"custom_instructions"})
    if unknown:
        raise ValidationError(f"project.update: unknown setting {unknown[0]}.", field=unknown[0])
    if "custom_instructions" not in changes:
        raise ValidationError("project.update: send custom_instructions (null clears it).", field="custom_instructions")
    text = changes["custom_instructions"] or ""
    if not isinstance(text, str) or len(text) > CUSTOM_INSTRUCTIONS_MAX:
        raise ValidationError(
            f"custom_instructions must be text of at most {CUSTOM_INSTRUCTIONS_MAX} characters.",
            field="custom_instructions",
        )
    Tenant.objects.filter(pk=scope.tenant_id).update(custom_instructions=text.strip())
    audit_record(scope=scope, action="project.update", details={"custom_instructions_chars": len(text.strip())})
    return project_get(scope=scope, org_id=org_id, project_id=project_id)


def project_instructions(*, scope: Scope) -> str | None:
    """What the extraction LLM is told on this tenant's infer=true adds."""
    return Tenant.objects.filter(pk=scope.tenant_id).values_list("custom_instructions", flat=True).first() or None


def _own(scope: Scope, org_id: str, project_id: str) -> Tenant:
    if org_id != scope.tenant_slug or project_id != scope.tenant_slug:
        raise NotFound("Project not found: a memadmin project is your tenant (org_id = project_id = its slug).")
    return Tenant.objects.get(pk=scope.tenant_id)
