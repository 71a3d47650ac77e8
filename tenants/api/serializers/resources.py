"""The other resources' bodies: erasure receipts, exports, ping, "your data" links, jobs, and the one error shape."""

from __future__ import annotations

from rest_framework import serializers

from tenants.api.serializers.memories import (
    ID_MAX,
    FiltersField,
    HistorySerializer,
    IdField,
    MemorySerializer,
    id_field,
)
from tenants.jobs.models import Job


class ReceiptDocumentSerializer(serializers.Serializer):
    receipt = serializers.DictField(help_text="The signed body: kind, who asked, scope, counts per app, verification.")
    signature = serializers.DictField(help_text="{algorithm: Ed25519, key_id, value: base64}")
    purge = serializers.DictField(allow_null=True, help_text="The signed purge attestation, once the disk purge ran.")


class ReceiptPublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    key_id = serializers.CharField()
    public_key_pem = serializers.CharField()


class ExportCreateSerializer(serializers.Serializer):
    schema = serializers.JSONField(
        required=False, allow_null=True, help_text="Accepted for compatibility; exports are memadmin's flat JSON."
    )
    filters = FiltersField(required=False, allow_null=True)
    user_id = id_field("Export this end user's memories.")
    agent_id = id_field("Only this agent's.")
    run_id = id_field("Only this run's.")
    app_id = id_field("Only this app's.")


class ExportGetSerializer(ExportCreateSerializer):
    memory_export_id = serializers.CharField(
        required=False, allow_null=True, max_length=4000, help_text="The id POST /v1/exports/ returned."
    )


class ExportCreatedSerializer(serializers.Serializer):
    id = serializers.CharField()
    message = serializers.CharField()
    status = serializers.CharField()


class ExportedMemorySerializer(MemorySerializer):
    history = HistorySerializer(many=True)


class ExportSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    results = ExportedMemorySerializer(many=True)
    count = serializers.IntegerField()


class PingSerializer(serializers.Serializer):
    status = serializers.CharField()
    org_id = serializers.CharField()
    project_id = serializers.CharField()
    user_email = serializers.CharField(allow_null=True)
    tenant = serializers.CharField()
    principal = serializers.CharField(help_text="key:<name> or the staff user.")
    role = serializers.CharField()
    apps = serializers.ListField(child=serializers.CharField())


class DataLinkRequestSerializer(serializers.Serializer):
    user_id = IdField(max_length=ID_MAX, trim_whitespace=False)
    ttl = serializers.IntegerField(
        required=False,
        default=7 * 86400,
        min_value=60,
        max_value=90 * 86400,
        help_text="Seconds the link stays valid (1 minute to 90 days; default 7 days).",
    )


class DataLinkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class ErasureJobSerializer(serializers.Serializer):
    message = serializers.CharField()
    job_id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=Job.State.values)
    reason = serializers.ChoiceField(
        choices=["large", "index_unhealthy", "moving", "requested"],
        help_text="Why the job runs: over the limit, an index that cannot vouch for a count of 0, an app being moved "
        "between memory stores (the job starts when the move ends), or (requested) "
        "started from the dashboard. A request that joins an erasure already under way gets that job's reason.",
    )
    status_url = serializers.CharField(help_text="The job's path (GET /v1/jobs/{job_id}/): follow it to the receipt.")


class JobProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Memories (or export lines) handled so far.")
    total = serializers.IntegerField(help_text="How many there are to handle; 0 until counted.")
    percent = serializers.IntegerField(min_value=0, max_value=100)
    eta_seconds = serializers.IntegerField(allow_null=True, help_text="While running, at the rate so far.")


class JobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Job.Kind.values)
    state = serializers.ChoiceField(choices=Job.State.values)
    progress = JobProgressSerializer()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True, help_text="Why the job failed (or stopped).")
    receipt = serializers.DictField(
        allow_null=True,
        help_text="Once the job has finished (also after a cancel, for what it did): the dashboard's receipt.json "
        "— who asked, the scope, per app the memories / history rows / messages deleted and the remaining count, "
        "verified_at. Counts and ids only, never memory text.",
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
    detail = serializers.CharField(help_text="The same message (what mem0.MemoryClient shows).")
