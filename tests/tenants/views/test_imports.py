"""tenants/views/imports.py: the app page's import upload (bounded, admins only, the job's progress and
receipt on the job page) and registering an existing Mem0 OSS collection as an app."""

import json
import re

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from memadmin.memory import index, selectors
from memadmin.memory.filters import filter_from_fields
from tenants.collection_claims import collection_claim_token
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.models import App
from tenants.scoping import scope_for_membership
from tests.support.dashboard import login


def _file(rows, name="memories.ndjson"):
    return SimpleUploadedFile(name, "".join(json.dumps(r) + "\n" for r in rows).encode(), "application/x-ndjson")


ROWS = [
    {
        "id": f"imp-{i}",
        "memory": f"imported fact {i}",
        "user_id": "carol",
        "created_at": "2024-01-02T03:04:05Z",
        "history": [{"id": f"h-{i}", "event": "ADD", "new_memory": f"imported fact {i}"}],
    }
    for i in range(3)
]


def test_admin_uploads_and_follows_the_job_to_its_receipt(client, world):
    login(client, world.acme_admin)
    page = client.get(reverse("app", args=["acme", "concierge_app"]))
    assert b'data-testid="import-link"' in page.content
    form = client.get(reverse("app_import", args=["acme", "concierge_app"]))
    assert form.status_code == 200 and b'enctype="multipart/form-data"' in form.content
    response = client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)})
    job = Job.objects.get(kind=Job.Kind.IMPORT_APP)
    assert response.status_code == 302 and response["Location"] == reverse("job", args=["acme", job.pk])
    assert job.params["filename"] == "memories.ndjson" and job.params["bytes"] > 0
    assert run_job(job.pk) == Job.State.SUCCEEDED
    detail = client.get(response["Location"])
    assert b'data-testid="import-receipt"' in detail.content and b"3 memories, 3 history rows" in detail.content
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="carol")) == 3
    assert [h["event"] for h in selectors.memory_history(scope=scope, memory_id="imp-0")] == ["ADD"]
    listing = client.get(reverse("app_import", args=["acme", "concierge_app"]))
    assert b"memories.ndjson" in listing.content and b"<progress" in listing.content


def test_malformed_rows_are_listed_on_the_job_page(client, world):
    login(client, world.acme_admin)
    rows = [ROWS[0], {"id": "x", "memory": "no user"}]
    client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(rows)})
    job = Job.objects.get(kind=Job.Kind.IMPORT_APP)
    run_job(job.pk)
    detail = client.get(reverse("job", args=["acme", job.pk]))
    assert b"line 2: user_id is required" in detail.content
    assert b"so nothing was imported" in detail.content


def test_oversize_upload_is_refused_before_a_job_exists(client, world, settings):
    settings.MEMADMIN_IMPORT_MAX_MB = 1
    login(client, world.acme_admin)
    url = reverse("app_import_start", args=["acme", "concierge_app"])
    big = SimpleUploadedFile("big.ndjson", b"x" * (2 * 1024 * 1024))
    response = client.post(url, {"file": big})
    assert response.status_code == 413 and b"larger than 1 MB" in response.content
    # A body that lies about its size is stopped while it streams, by the upload handler.
    just_over = SimpleUploadedFile("over.ndjson", b"x" * (1024 * 1024 + 10))
    response = client.post(url, {"file": just_over})
    assert response.status_code == 413
    assert not Job.objects.exists()


def test_empty_or_missing_file_is_a_form_error(client, world):
    login(client, world.acme_admin)
    url = reverse("app_import_start", args=["acme", "concierge_app"])
    assert client.post(url, {}).status_code == 400
    assert client.post(url, {"file": SimpleUploadedFile("e.json", b"")}).status_code == 400
    assert not Job.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_viewer_and_support_cannot_import(client, world, role):
    login(client, getattr(world, f"acme_{role}"))
    assert client.get(reverse("app_import", args=["acme", "concierge_app"])).status_code == 403
    response = client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)})
    assert response.status_code == 403
    assert b'data-testid="import-link"' not in client.get(reverse("app", args=["acme", "concierge_app"])).content
    assert not Job.objects.exists()


def test_outsider_and_other_tenant_get_404(client, world):
    login(client, world.outsider)
    assert (
        client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)}).status_code
        == 404
    )
    login(client, world.globex_admin)
    assert client.get(reverse("app_import", args=["acme", "concierge_app"])).status_code == 404
    assert (
        client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)}).status_code
        == 404
    )
    login(client, world.acme_admin)
    assert client.get(reverse("app_import", args=["acme", "no_such_app"])).status_code == 404
    assert not Job.objects.exists()


def test_upload_is_csrf_protected(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login(client, world.acme_admin)
    response = client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)})
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_get_on_the_upload_is_405(client, world):
    login(client, world.acme_admin)
    assert client.get(reverse("app_import_start", args=["acme", "concierge_app"])).status_code == 405


# --- registering a Mem0 OSS collection -----------------------------------------------------------


def _mem0_collection(raw_valkey, name: str, *, dims: int, n: int = 3) -> None:
    """What Mem0 OSS leaves on a store: its own index (comma-split, case-insensitive TAGs, prefix without
    colon) and hashes written by its agents."""
    raw_valkey.execute_command(
        "FT.CREATE",
        name,
        "ON",
        "HASH",
        "PREFIX",
        "1",
        f"mem0:{name}",
        "SCHEMA",
        "memory_id",
        "TAG",
        "hash",
        "TAG",
        "agent_id",
        "TAG",
        "run_id",
        "TAG",
        "user_id",
        "TAG",
        "memory",
        "TEXT",
        "metadata",
        "TAG",
        "created_at",
        "NUMERIC",
        "updated_at",
        "NUMERIC",
        "embedding",
        "VECTOR",
        "FLAT",
        "6",
        "TYPE",
        "FLOAT32",
        "DIM",
        str(dims),
        "DISTANCE_METRIC",
        "COSINE",
    )
    for i in range(n):
        vector = (np.ones(dims) / np.sqrt(dims)).astype(np.float32)
        raw_valkey.hset(
            f"mem0:{name}:oss-{i}",
            mapping={
                "memory_id": f"oss-{i}",
                "hash": f"h{i}",
                "memory": f"OSS fact {i}",
                "user_id": "Dana",
                "created_at": 1700000000 + i,
                "metadata": "{}",
                "embedding": vector.tobytes(),
            },
        )


def test_register_a_mem0_collection_with_a_claim(client, world, raw_valkey):
    _mem0_collection(raw_valkey, "support_bot", dims=settings.MEMADMIN_EMBEDDER_DIMS)
    login(client, world.acme_admin)
    assert b'data-testid="register-collection"' in client.get(reverse("overview", args=["acme"])).content
    url = reverse("collection_register_save", args=["acme"])
    first = client.post(url, {"app_id": "support", "collection_name": "support_bot"})
    assert first.status_code == 200 and b'data-testid="claim"' in first.content
    token = collection_claim_token(tenant=world.acme, collection="support_bot")
    assert token.encode() in first.content and not App.objects.filter(app_id="support").exists()
    unproven = client.post(url, {"app_id": "support", "collection_name": "support_bot", "register": "1"})
    assert unproven.status_code == 400 and not App.objects.filter(app_id="support").exists()

    raw_valkey.set("memadmin:claim:support_bot", token)
    done = client.post(url, {"app_id": "support", "collection_name": "support_bot", "register": "1"})
    assert done.status_code == 302 and done["Location"] == reverse("app", args=["acme", "support"])
    app = App.objects.get(tenant=world.acme, app_id="support")
    assert app.collection_name == "support_bot" and raw_valkey.get("memadmin:claim:support_bot") is None
    # Its index was checked and re-made exact: ids are case-sensitive now, and its memories are browsable.
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="Dana", app_id="support")) == 3
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="dana", app_id="support")) == 0
    page = client.get(done["Location"])
    assert page.status_code == 200 and b'data-testid="app-health"' in page.content


def test_another_tenants_token_does_not_claim(client, world, raw_valkey):
    _mem0_collection(raw_valkey, "their_bot", dims=settings.MEMADMIN_EMBEDDER_DIMS)
    raw_valkey.set("memadmin:claim:their_bot", collection_claim_token(tenant=world.globex, collection="their_bot"))
    login(client, world.acme_admin)
    response = client.post(
        reverse("collection_register_save", args=["acme"]),
        {"app_id": "theirs", "collection_name": "their_bot", "register": "1"},
    )
    assert response.status_code == 400 and not App.objects.filter(app_id="theirs").exists()


@pytest.mark.parametrize(
    "collection,message",
    [
        ("ma_acme_concierge_app_1234", b"memadmin&#x27;s own"),  # memadmin's own collections
        ("has:colon", b"Collection names are"),
        ("nothing_here", b"no Mem0 collection"),
    ],
)
def test_register_refusals(client, world, raw_valkey, collection, message):
    raw_valkey.set(f"memadmin:claim:{collection}", collection_claim_token(tenant=world.acme, collection=collection))
    login(client, world.acme_admin)
    response = client.post(
        reverse("collection_register_save", args=["acme"]),
        {"app_id": "new_app", "collection_name": collection, "register": "1"},
    )
    assert response.status_code == 400 and message in response.content
    assert not App.objects.filter(app_id="new_app").exists()


def test_register_refuses_vectors_of_another_size(client, world, raw_valkey):
    _mem0_collection(raw_valkey, "big_vectors", dims=8)
    raw_valkey.set("memadmin:claim:big_vectors", collection_claim_token(tenant=world.acme, collection="big_vectors"))
    login(client, world.acme_admin)
    response = client.post(
        reverse("collection_register_save", args=["acme"]),
        {"app_id": "big", "collection_name": "big_vectors", "register": "1"},
    )
    assert response.status_code == 409 and b"8-dimension vectors" in response.content
    assert not App.objects.filter(app_id="big").exists()


def test_register_an_app_id_twice_or_a_registered_collection(client, world, raw_valkey):
    _mem0_collection(raw_valkey, "bot", dims=settings.MEMADMIN_EMBEDDER_DIMS)
    App.objects.create(tenant=world.globex, app_id="bot", collection_name="bot")
    raw_valkey.set("memadmin:claim:bot", collection_claim_token(tenant=world.acme, collection="bot"))
    login(client, world.acme_admin)
    url = reverse("collection_register_save", args=["acme"])
    taken = client.post(url, {"app_id": "bot2", "collection_name": "bot", "register": "1"})
    assert taken.status_code == 400 and b"cannot be registered" in taken.content
    same_id = client.post(url, {"app_id": "concierge_app", "collection_name": "bot", "register": "1"})
    assert same_id.status_code == 400 and b"app by that id already" in same_id.content


def test_register_a_collection_on_the_second_store(client, world, two_stores, raw_valkey):
    """With MEMADMIN_STORES set the form names the store: the claim is read, the index checked and the app made
    there (it was a 500 before: nothing had told the engines where a collection no scope named lives)."""
    second = two_stores.client()
    _mem0_collection(second, "eu_bot", dims=settings.MEMADMIN_EMBEDDER_DIMS)
    login(client, world.acme_admin)
    page = client.get(reverse("collection_register", args=["acme"]))
    assert page.status_code == 200 and b'data-testid="register-store"' in page.content
    url = reverse("collection_register_save", args=["acme"])
    data = {"app_id": "eu", "collection_name": "eu_bot", "store": "second"}
    first = client.post(url, data)
    assert first.status_code == 200 and b'data-testid="claim-store">second<' in first.content

    token = collection_claim_token(tenant=world.acme, collection="eu_bot")
    raw_valkey.set("memadmin:claim:eu_bot", token)  # on the default store: not where the collection is
    wrong_store = client.post(url, {**data, "register": "1"})
    assert wrong_store.status_code == 400 and b"does not hold this tenant" in wrong_store.content
    on_default = client.post(url, {**data, "store": "default", "register": "1"})
    assert on_default.status_code == 400 and b"no Mem0 collection eu_bot" in on_default.content
    assert not App.objects.filter(app_id="eu").exists()

    second.set("memadmin:claim:eu_bot", token)
    done = client.post(url, {**data, "register": "1"})
    assert done.status_code == 302 and done["Location"] == reverse("app", args=["acme", "eu"])
    app = App.objects.get(tenant=world.acme, app_id="eu")
    assert (app.store, app.collection_name) == ("second", "eu_bot")
    assert second.get("memadmin:claim:eu_bot") is None and raw_valkey.get("memadmin:claim:eu_bot") == token.encode()
    # Re-indexed exact where the data is, and read from there.
    assert index.is_ours(index.info(app.app_ref().place), "eu_bot")
    scope = scope_for_membership(world.acme_admin)
    assert selectors.memory_count(scope=scope, filters=filter_from_fields(user_id="Dana", app_id="eu")) == 3
    assert client.get(done["Location"]).status_code == 200


def test_register_refuses_a_store_that_is_not_configured(client, world, two_stores):
    login(client, world.acme_admin)
    data = {"app_id": "x", "collection_name": "bot", "store": "nowhere", "register": "1"}
    response = client.post(reverse("collection_register_save", args=["acme"]), data)
    assert response.status_code == 400 and b"Select a valid choice" in response.content
    assert not App.objects.filter(app_id="x").exists()


def test_one_store_offers_no_store_to_choose(client, world):
    login(client, world.acme_admin)
    page = client.get(reverse("collection_register", args=["acme"]))
    assert page.status_code == 200 and b'data-testid="register-store"' not in page.content


def test_a_repeated_import_says_it_imported_nothing_and_no_history_is_not_blamed_on_its_age(client, world):
    login(client, world.acme_admin)
    rows = [{k: v for k, v in row.items() if k != "history"} for row in ROWS]
    for name in ("first.ndjson", "again.ndjson"):
        client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(rows, name)})
        assert run_job(Job.objects.get(params__filename=name).pk) == Job.State.SUCCEEDED
    listing = client.get(reverse("jobs", args=["acme"])).content.decode()
    cells = re.findall(r'data-testid="job-progress">([^<]*)<', listing)
    assert cells == ["0 imported of 3 rows, 3 already stored", "3 imported of 3 rows"]  # newest first
    again = Job.objects.get(params__filename="again.ndjson")
    page = client.get(reverse("job", args=["acme", again.pk])).content.decode()
    assert "0 imported of 3 rows, 3 already stored (100%)" in page
    memory = client.get(reverse("memory", args=["acme", "concierge_app", "imp-0"])).content.decode()
    assert "imported from a file that carried none" in memory and "before history was enabled" not in memory


def test_a_running_import_says_what_it_is_doing_before_the_first_batch(client, world):
    login(client, world.acme_admin)
    client.post(reverse("app_import_start", args=["acme", "concierge_app"]), {"file": _file(ROWS)})
    job = Job.objects.get(kind=Job.Kind.IMPORT_APP)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, total=3, done=0)
    page = client.get(reverse("job", args=["acme", job.pk])).content.decode()
    assert "0 of 3 rows: embedding the first batch (0%)" in page and "0 memories" not in page
