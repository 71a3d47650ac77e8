# A legal hold was expressible three ways (Tenant.legal_hold, EndUser.legal_hold, LegalHold rows):
# turn the two booleans into rows, so LegalHold is the only one left (tenants/0003 drops the booleans).
from django.db import migrations

REASON = "Legal hold flag set before holds became one model"


def flags_to_rows(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    EndUser = apps.get_model("tenants", "EndUser")
    LegalHold = apps.get_model("memory", "LegalHold")
    for tenant in Tenant.objects.filter(legal_hold=True):
        LegalHold.objects.create(tenant=tenant, reason=REASON, created_by="migration")
    for end_user in EndUser.objects.filter(legal_hold=True):
        LegalHold.objects.create(tenant_id=end_user.tenant_id, user_id=end_user.user_id, reason=REASON,
                                 created_by="migration")


def rows_to_flags(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    EndUser = apps.get_model("tenants", "EndUser")
    LegalHold = apps.get_model("memory", "LegalHold")
    active = LegalHold.objects.filter(released_at__isnull=True, app__isnull=True)
    Tenant.objects.filter(pk__in=active.filter(user_id="").values("tenant_id")).update(legal_hold=True)
    for tenant_id, user_id in active.exclude(user_id="").values_list("tenant_id", "user_id"):
        EndUser.objects.filter(tenant_id=tenant_id, user_id=user_id).update(legal_hold=True)
    LegalHold.objects.filter(reason=REASON, created_by="migration").delete()


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_initial"), ("tenants", "0002_audit_and_holds_move_to_memory")]

    operations = [migrations.RunPython(flags_to_rows, rows_to_flags)]
