"""Paths exactly as mem0.MemoryClient (mem0ai 2.2) builds them, trailing slashes included."""

from csp.constants import SELF
from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from tenants.api import events, platform, project, views, webhooks

_public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}
# Swagger UI and Redoc (served locally) style their pages with inline <style>; scripts stay 'self' only
# (the split view serves Swagger's init script as a file; templates/drf_spectacular/redoc.html drops
# Redoc's inline one). Redoc starts a worker from a blob: URL, and its bundle hard-codes one image, the
# "API docs by Redocly" logo from cdn.redoc.ly: allowed on that page alone rather than a console error.
_docs_csp = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": [SELF, "blob:"]})
_redoc_csp = csp_update(
    {
        "style-src": ["'unsafe-inline'"],
        "worker-src": [SELF, "blob:"],
        "img-src": ["https://cdn.redoc.ly/redoc/logo-mini.svg"],
    }
)

# <path:...>: mem0.MemoryClient puts ids into paths unencoded, so an id holding "/" still reaches its view.
urlpatterns = [
    path("v1/ping/", views.ping, name="api-ping"),
    path("v3/memories/add/", views.memory_add, name="api-memory-add"),
    path("v3/memories/search/", views.memory_search, name="api-memory-search"),
    path("v3/memories/", views.memory_list, name="api-memory-list"),
    path("v1/memories/", views.memory_delete_all, name="api-memory-delete-all"),
    path("v1/memories/<path:memory_id>/history/", views.memory_history, name="api-memory-history"),
    path("v1/memories/<path:memory_id>/", views.memory_detail, name="api-memory-detail"),
    path("v1/entities/", views.entity_list, name="api-entities"),
    # Before api-entity-delete, whose <path:name> would also match ".../profile/" (the client's get_profile).
    path("v2/entities/<str:entity_type>/<path:name>/profile/", views.entity_profile, name="api-entity-profile"),
    path("v2/entities/<str:entity_type>/<path:name>/", views.entity_delete, name="api-entity-delete"),
    path("v1/batch/", views.memory_batch, name="api-batch"),
    path("v1/exports/", views.export_create, name="api-export-create"),
    path("v1/exports/get/", views.export_get, name="api-export-get"),
    path("api/v1/data-links/", views.data_link_create, name="api-data-links"),
    path("v1/jobs/<uuid:job_id>/", views.job_detail, name="api-job"),  # memadmin's own: an erasure's 202 names it
    # memadmin's own: erasure receipts (a deletion's answer names one) and the key that verifies them.
    path("v1/receipts/public-key/", views.receipt_public_key, name="api-receipt-public-key"),
    path("v1/receipts/<uuid:receipt_id>/", views.receipt_detail, name="api-receipt"),
    path("api/v1/webhooks/projects/<str:project_id>/", webhooks.webhook_collection, name="api-webhooks"),
    path("api/v1/webhooks/<int:webhook_id>/", webhooks.webhook_detail, name="api-webhook"),
    path("v1/events/", events.event_list, name="api-events"),
    path("v1/events/<uuid:event_id>/", events.event_detail, name="api-event"),
    # The tenant as a Mem0 project (client.project.*, get_project / update_project).
    path("api/v1/orgs/organizations/<str:org_id>/projects/", project.project_create, name="api-project-create"),
    path(
        "api/v1/orgs/organizations/<str:org_id>/projects/<str:project_id>/", project.project_detail, name="api-project"
    ),
    path(
        "api/v1/orgs/organizations/<str:org_id>/projects/<str:project_id>/members/",
        project.project_members,
        name="api-project-members",
    ),
    # Hosted-platform features memadmin does not have: a 400 naming the client method and why.
    path("v1/summary/", platform.summary, name="api-summary"),
    path("v1/feedback/", platform.feedback, name="api-feedback"),
    path("v2/profiles/jobs/", platform.profile_jobs, name="api-profile-jobs"),
    path("v2/profiles/jobs/<path:job_id>/", platform.profile_job, name="api-profile-job"),
    path("v2/profiles/settings/", platform.profile_settings, name="api-profile-settings"),
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="api-schema"),
    path(
        "api/docs/", _docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema", **_public)), name="api-docs"
    ),
    path("api/redoc/", _redoc_csp(SpectacularRedocView.as_view(url_name="api-schema", **_public)), name="api-redoc"),
]
