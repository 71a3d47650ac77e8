from django.urls import include, path, register_converter

from tenants import views
from tenants.converters import StoredIdConverter
from tenants.views import (
    app_pages,
    audit,
    auth,
    entities,
    imports,
    invitations,
    jobs,
    keys,
    members,
    memories,
    overview,
    receipts,
    request_log,
    selection,
    users,
    webhooks,
    your_data,
)

# Any stored app_id / memory_id reverses, "/" and ".." included (tenants/converters.py).
register_converter(StoredIdConverter, "id")

# One tenant's dashboard, mounted once under t/<tenant_slug>/. Every view here goes through tenant_view;
# the capability each URL name needs is in tenants/permissions.py.
tenant_urls = [
    path("", overview.overview, name="overview"),
    path("memories/", memories.browse, name="memories"),
    path("memories/<id:app_id>/<id:memory_id>/", memories.detail, name="memory"),
    path("memories/<id:app_id>/<id:memory_id>/delete/", memories.memory_delete, name="memory_delete"),
    path("memories/<id:app_id>/<id:memory_id>/edit/", memories.memory_edit, name="memory_edit"),
    path("memories/<id:app_id>/<id:memory_id>/edit/save/", memories.memory_edit_save, name="memory_edit_save"),
    path("apps/<id:app_id>/", app_pages.app_detail, name="app"),
    path("apps/<id:app_id>/export/", memories.app_export, name="app_export"),
    path("apps/<id:app_id>/pause/", app_pages.app_pause_view, name="app_pause"),
    path("apps/<id:app_id>/resume/", app_pages.app_resume_view, name="app_resume"),
    # bringing memories in (tenants/views/imports.py)
    path("apps/<id:app_id>/import/", imports.app_import, name="app_import"),
    path("apps/<id:app_id>/import/start/", imports.app_import_start, name="app_import_start"),
    path("register-collection/", imports.collection_register, name="collection_register"),
    path("register-collection/save/", imports.collection_register_save, name="collection_register_save"),
    path("users/", users.user_index, name="users"),
    path("users/suggest/", users.user_suggest, name="user_suggest"),
    path("user/", users.user_detail, name="user"),
    path("user/export/", users.user_export, name="user_export"),
    path("user/delete/", users.user_delete, name="user_delete"),
    path("user/run/delete/", users.user_run_delete, name="user_run_delete"),
    path("user/agent/delete/", users.user_agent_delete, name="user_agent_delete"),
    path("user/links/", users.link_issue, name="link_issue"),
    path("links/", users.link_index, name="links"),
    path("links/<uuid:link_id>/revoke/", users.link_revoke, name="link_revoke"),
    # agents and runs (tenants/views/entities.py); their ids travel in the query string, like user ids
    path("agents/", entities.agent_index, name="agents"),
    path("agents/agent/", entities.agent_detail, name="agent"),
    path("agents/agent/delete/", entities.agent_delete, name="agent_delete"),
    path("runs/", entities.run_index, name="runs"),
    path("runs/run/", entities.run_detail, name="run"),
    path("runs/run/delete/", entities.run_delete, name="run_delete"),
    # bulk selection in memory tables (tenants/views/selection.py)
    path("selection/delete/", selection.selection_delete, name="selection_delete"),
    path("selection/export/", selection.selection_export, name="selection_export"),
    path("selection/deleted/", selection.deletion_done, name="deletion_done"),
    path("audit/", audit.audit_log, name="audit"),
    # signed erasure receipts (tenants/views/receipts.py)
    path("erasures/", receipts.erasure_list, name="erasures"),
    # Downloads end in receipt.json or sit under download/: the crawler (tests/browser) follows no download.
    path("erasures/download/public-key.pem", receipts.erasure_public_key, name="erasure_public_key"),
    path("erasures/<uuid:receipt_id>/receipt.json", receipts.erasure_receipt, name="erasure_receipt"),
    path("audit/export.csv", audit.audit_csv, name="audit_csv"),
    path("members/", members.members, name="members"),
    path("members/add/", members.member_add, name="member_add"),
    path("invitations/<int:invitation_id>/resend/", members.invitation_resend_view, name="invitation_resend"),
    path("invitations/<int:invitation_id>/cancel/", members.invitation_cancel_view, name="invitation_cancel"),
    path("members/<int:member_id>/role/", members.member_role, name="member_role"),
    path("members/<int:member_id>/remove/", members.member_remove, name="member_remove"),
    path("keys/", keys.api_keys, name="api_keys"),
    path("keys/new/", keys.api_key_new, name="api_key_new"),
    path("keys/<id:prefix>/revoke/", keys.api_key_revoke_view, name="api_key_revoke"),
    path("keys/<id:prefix>/offboarding/", keys.api_key_offboarding, name="api_key_offboarding"),
    path("requests/", request_log.request_log, name="requests"),  # the API request log (tenants/request_log/)
    # background jobs (tenants/views/jobs.py)
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<uuid:job_id>/", jobs.job_detail, name="job"),
    path("jobs/<uuid:job_id>/receipt.json", jobs.job_receipt, name="job_receipt"),
    path("jobs/<uuid:job_id>/download/", jobs.job_download, name="job_download"),
    path("jobs/<uuid:job_id>/cancel/", jobs.job_cancel_view, name="job_cancel"),
    path("apps/<id:app_id>/offboard/", jobs.app_offboard, name="app_offboard"),
    path("apps/<id:app_id>/offboard/start/", jobs.app_offboard_start, name="app_offboard_start"),
    path("apps/<id:app_id>/move/", jobs.app_move, name="app_move"),
    path("apps/<id:app_id>/move/start/", jobs.app_move_start, name="app_move_start"),
    path("apps/<id:app_id>/export-job/", jobs.app_export_job, name="app_export_job"),
    path("export-job/", jobs.app_export_job, name="tenant_export_job"),
    path("user/erase/", jobs.user_erase, name="user_erase"),
    # webhooks (tenants/views/webhooks.py)
    path("webhooks/", webhooks.webhook_index, name="webhooks"),
    path("webhooks/new/", webhooks.webhook_new, name="webhook_new"),
    path("webhooks/<int:webhook_id>/", webhooks.webhook_detail, name="webhook"),
    path("webhooks/<int:webhook_id>/edit/", webhooks.webhook_edit, name="webhook_edit"),
    path("webhooks/<int:webhook_id>/test/", webhooks.webhook_test, name="webhook_test"),
    path("webhooks/<int:webhook_id>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"),
    path("webhooks/<int:webhook_id>/delete/", webhooks.webhook_delete, name="webhook_delete"),
]

# An end user's own page, reached through a private link (tenants/views/your_data.py).
your_data_urls = [
    path("", your_data.your_data, name="your_data"),
    path("export.json", your_data.your_data_export, name="your_data_export"),
    path("delete-all/", your_data.your_data_delete_all, name="your_data_delete_all"),
    path("receipts/<uuid:receipt_id>/receipt.json", your_data.your_data_receipt, name="your_data_receipt"),
    path(
        "memories/<id:app_id>/<id:memory_id>/delete/", your_data.your_data_delete_memory, name="your_data_delete_memory"
    ),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", auth.home, name="home"),
    path("login/", auth.login, name="login"),
    path("logout/", auth.logout, name="logout"),
    path("t/<slug:tenant_slug>/", include(tenant_urls)),
    path("invitations/<str:token>/", invitations.accept, name="invitation_accept"),
    path("your-data/<str:token>/", include(your_data_urls)),
]
