"""Generated from the API URLconf and tenants/api/permissions.ENDPOINT_CAPABILITIES.

Every endpoint (except the public schema pages) names a capability for every method it serves, so a new
endpoint without one fails here; and every staff role gets 403 exactly where its role lacks that capability.
"""

import pytest
from django.urls import get_resolver, reverse

from memadmin.memory.capabilities import role_can
from tenants.api.permissions import ENDPOINT_CAPABILITIES, PUBLIC
from tenants.permissions import ROLES


def api_endpoints() -> dict[str, set[str]]:
    """URL name -> the methods its view serves, for every view the DRF API dispatches."""
    found = {}
    for pattern in get_resolver().url_patterns:
        for p in getattr(pattern, "url_patterns", [pattern]):
            cls = getattr(p.callback, "cls", None)
            if cls is None or p.name in PUBLIC:
                continue
            found[p.name] = {m.upper() for m in cls.http_method_names} - {"OPTIONS"}
    return found


def test_every_endpoint_and_method_has_a_capability():
    assert {name: set(methods) for name, methods in ENDPOINT_CAPABILITIES.items()} == api_endpoints()


KWARGS = {"api-memory-history": {"memory_id": "x"}, "api-memory-detail": {"memory_id": "x"},
          "api-entity-delete": {"entity_type": "user", "name": "nobody"},
          "api-job": {"job_id": "00000000-0000-4000-8000-000000000000"},
          "api-receipt": {"receipt_id": "00000000-0000-4000-8000-000000000000"},
          "api-webhooks": {"project_id": "acme"}, "api-webhook": {"webhook_id": 999999},
          "api-event": {"event_id": "00000000-0000-4000-8000-000000000000"},
          "api-entity-profile": {"entity_type": "user", "name": "nobody"},
          "api-project-create": {"org_id": "acme"},
          "api-project": {"org_id": "acme", "project_id": "acme"},
          "api-project-members": {"org_id": "acme", "project_id": "acme"},
          "api-profile-job": {"job_id": "x"}}  # fmt: skip
CASES = [(name, method, role) for name, methods in ENDPOINT_CAPABILITIES.items() for method in methods
         for role in ROLES]  # fmt: skip


@pytest.mark.parametrize("name,method,role", CASES, ids=[f"{n}-{m}-{r}" for n, m, r in CASES])
def test_staff_role_matrix(world, api, name, method, role):
    api.force_login(getattr(world, f"acme_{role}").user)
    url = reverse(name, kwargs=KWARGS.get(name, {}))
    response = getattr(api, method.lower())(url, {}, format="json", HTTP_X_MEMADMIN_TENANT="acme")
    assert response.status_code != 500
    if role_can(role, ENDPOINT_CAPABILITIES[name][method]):
        assert response.status_code != 403, response.content[:300]
    else:
        assert response.status_code == 403, response.content[:300]
