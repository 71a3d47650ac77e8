"""One metadata limit for every way in: the largest metadata the API accepts comes back through an export and an
import (the round trip an export promises), and one byte more is refused by both with the same message."""

import json
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from memadmin.memory import selectors
from memadmin.memory.services import MAX_METADATA_BYTES
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.jobs.services import job_export, job_import
from tenants.models import TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.factories import two_tenant_world
from tests.support.jobs import prepare_job_files


def _metadata(size: int) -> dict:
    """A metadata object whose JSON is exactly ``size`` bytes in UTF-8 (two-byte letters in it, so bytes and
    characters differ)."""
    empty = len(json.dumps({"note": ""}, ensure_ascii=False).encode())
    body = "é" * ((size - empty) // 2) + "x" * ((size - empty) % 2)
    metadata = {"note": body}
    assert len(json.dumps(metadata, ensure_ascii=False).encode()) == size
    return metadata


@pytest.mark.django_db(transaction=True)
def test_the_largest_metadata_the_api_takes_survives_export_and_import(settings, tmp_path):
    prepare_job_files(settings)
    world = two_tenant_world()
    scope = scope_for_membership(world.acme_admin)
    _row, key = TenantAPIKey.objects.create_key(name="crm", tenant=world.acme)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def add(metadata):
        body = {
            "messages": "a fact with a large note",
            "user_id": "alice",
            "app_id": "concierge_app",
            "metadata": metadata,
        }
        return api.post("/v3/memories/add/", body, format="json")

    largest = _metadata(MAX_METADATA_BYTES)
    added = add(largest)
    assert added.status_code == 200, added.content
    too_large = add(_metadata(MAX_METADATA_BYTES + 1))
    assert too_large.status_code == 400
    message = too_large.json()["error"]["message"]
    assert message == f"metadata is over {MAX_METADATA_BYTES} bytes of JSON."
    memory_id = added.json()["results"][0]["id"]
    batch = api.put(
        "/v1/batch/",
        {"memories": [{"memory_id": memory_id, "metadata": _metadata(MAX_METADATA_BYTES + 1)}]},
        format="json",
    )
    assert batch.status_code == 400 and batch.json()["detail"] == f"Memory {memory_id}: {message}"
    update = api.put(
        f"/v1/memories/{memory_id}/",
        {"text": "a fact with a large note", "metadata": _metadata(MAX_METADATA_BYTES + 1)},
        format="json",
    )
    assert update.status_code == 400 and update.json()["detail"] == message

    export = job_export(scope=scope, app_id="concierge_app")
    assert run_job(export.pk) == Job.State.SUCCEEDED
    export.refresh_from_db()
    exported = [json.loads(line) for line in Path(export.result_file).read_text().splitlines() if line.strip()]
    assert len(exported) == 1 and exported[0]["metadata"] == largest

    # The same file, plus the same row one byte over, into another app of the tenant.
    over = {**exported[0], "id": "one-byte-more", "metadata": _metadata(MAX_METADATA_BYTES + 1)}
    source = tmp_path / "export.ndjson"
    source.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [*exported, over]) + "\n")
    job = job_import(scope=scope, app_id="sports_portal", source=source, filename="export.ndjson", skip_invalid=True)
    assert run_job(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.receipt["import"]["imported"] == 1
    assert [(b["at"], b["reason"]) for b in job.receipt["import"]["malformed_rows"]] == [(2, message)]
    imported = selectors.memory_get(scope=scope, memory_id=exported[0]["id"], app_id="sports_portal")
    assert imported.metadata == largest
