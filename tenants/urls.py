from django.urls import path, register_converter

from tenants import views
from tenants.converters import StoredIdConverter
from tenants.views import audit, auth, jobs, keys, members, memories, overview, users, your_data

# Any stored app_id / memory_id reverses, "/" and ".." included (tenants/converters.py).
register_converter(StoredIdConverter, "id")

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # --- dashboard (tenants/views/; permissions in tenants/permissions.py) ---
    path("", auth.home, name="home"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("t/<slug:tenant_slug>/", overview.overview, name="overview"),
    path("t/<slug:tenant_slug>/memories/", memories.browse, name="memories"),
    path("t/<slug:tenant_slug>/memories/<id:app_id>/<id:memory_id>/", memories.detail, name="memory"),
    path("t/<slug:tenant_slug>/memories/<id:app_id>/<id:memory_id>/delete/", memories.memory_delete,
         name="memory_delete"),
    path("t/<slug:tenant_slug>/apps/<id:app_id>/export/", memories.app_export, name="app_export"),
    path("t/<slug:tenant_slug>/users/", users.user_index, name="users"),
    path("t/<slug:tenant_slug>/user/", users.user_detail, name="user"),
    path("t/<slug:tenant_slug>/user/export/", users.user_export, name="user_export"),
    path("t/<slug:tenant_slug>/user/delete/", users.user_delete, name="user_delete"),
    path("t/<slug:tenant_slug>/user/links/", users.link_issue, name="link_issue"),
    path("t/<slug:tenant_slug>/links/<uuid:link_id>/revoke/", users.link_revoke, name="link_revoke"),
    path("t/<slug:tenant_slug>/audit/", audit.audit_log, name="audit"),
    path("t/<slug:tenant_slug>/audit/export.csv", audit.audit_csv, name="audit_csv"),
    path("t/<slug:tenant_slug>/members/", members.members, name="members"),
    path("t/<slug:tenant_slug>/members/add/", members.member_add, name="member_add"),
    path("t/<slug:tenant_slug>/members/<int:member_id>/role/", members.member_role, name="member_role"),
    path("t/<slug:tenant_slug>/members/<int:member_id>/remove/", members.member_remove, name="member_remove"),
    path("t/<slug:tenant_slug>/keys/", keys.api_keys, name="api_keys"),
    path("t/<slug:tenant_slug>/keys/new/", keys.api_key_new, name="api_key_new"),
    path("t/<slug:tenant_slug>/keys/<str:prefix>/revoke/", keys.api_key_revoke_view, name="api_key_revoke"),
    # --- background jobs (tenants/views/jobs.py) ---
    path("t/<slug:tenant_slug>/jobs/", jobs.job_list, name="jobs"),
    path("t/<slug:tenant_slug>/jobs/<uuid:job_id>/", jobs.job_detail, name="job"),
    path("t/<slug:tenant_slug>/jobs/<uuid:job_id>/receipt.json", jobs.job_receipt, name="job_receipt"),
    path("t/<slug:tenant_slug>/jobs/<uuid:job_id>/download/", jobs.job_download, name="job_download"),
    path("t/<slug:tenant_slug>/jobs/<uuid:job_id>/cancel/", jobs.job_cancel_view, name="job_cancel"),
    path("t/<slug:tenant_slug>/apps/<id:app_id>/offboard/", jobs.app_offboard, name="app_offboard"),
    path("t/<slug:tenant_slug>/apps/<id:app_id>/offboard/start/", jobs.app_offboard_start,
         name="app_offboard_start"),
    path("t/<slug:tenant_slug>/apps/<id:app_id>/export-job/", jobs.app_export_job, name="app_export_job"),
    path("t/<slug:tenant_slug>/export-job/", jobs.app_export_job, name="tenant_export_job"),
    path("t/<slug:tenant_slug>/user/erase/", jobs.user_erase, name="user_erase"),
    path("your-data/<str:token>/", your_data.your_data, name="your_data"),
    path("your-data/<str:token>/export.json", your_data.your_data_export, name="your_data_export"),
    path("your-data/<str:token>/delete-all/", your_data.your_data_delete_all, name="your_data_delete_all"),
    path("your-data/<str:token>/memories/<id:app_id>/<id:memory_id>/delete/", your_data.your_data_delete_memory,
         name="your_data_delete_memory"),
]
