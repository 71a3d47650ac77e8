from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The Mem0-compatible API (/v1/, /v2/, /v3/) and its schema and docs (/api/): tenants/api/urls.py.
    path("", include("tenants.api.urls")),
    path("", include("tenants.urls")),
]

# JSON on API paths, Django's pages elsewhere (tenants/api/errors.py).
handler400 = "tenants.api.errors.bad_request"
handler404 = "tenants.api.errors.page_not_found"
handler500 = "tenants.api.errors.server_error"
