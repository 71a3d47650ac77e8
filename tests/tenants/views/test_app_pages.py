"""tenants/views/app_pages.py: one app's page (counts, index health, guards, jobs, export and offboard; tombstone)."""

import re

from memadmin.memory.models import LegalHold
from tenants.jobs.models import Job
from tenants.models import App, RetentionPolicy
from tests.support.dashboard import login


def test_admin_sees_what_the_app_holds_its_health_and_the_ways_out(client, world, memories):
    login(client, world.acme_admin)
    response = client.get("/t/acme/apps/concierge_app/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="app-memories">2<' in html  # alice's food and bob, not sports nor Globex
    assert 'data-testid="app-health"' in html and "index healthy" in html
    assert "Keys at the last check" in html and "Drift at the last check" in html
    assert "/t/acme/apps/concierge_app/offboard/" in html and "/t/acme/apps/concierge_app/export/?format=json" in html
    assert "Jobs of this app" in html and "none on this app" in html and "Retention" in html
    assert "vegetarian" not in html  # counts and health only: no memory text on this page


def test_a_viewer_sees_the_counts_but_not_health_holds_exports_or_offboarding(client, world, memories):
    LegalHold.objects.create(tenant=world.acme, app=world.acme_concierge, reason="case 42", created_by="legal")
    login(client, world.acme_viewer)
    html = client.get("/t/acme/apps/concierge_app/").content.decode()
    assert 'data-testid="app-memories">2<' in html
    assert "app-health" not in html and "/offboard/" not in html and "/export/" not in html
    assert "case 42" not in html and "What guards the data" not in html
    assert "Jobs of this app" not in html


def test_overview_rows_lead_to_the_app_page(client, world, memories):
    login(client, world.acme_admin)
    html = client.get("/t/acme/").content.decode()
    assert 'href="/t/acme/apps/concierge_app/"' in html and 'href="/t/acme/apps/sports_portal/"' in html
    assert 'href="/t/acme/jobs/"' in html  # Jobs in the nav for those who may see jobs


def test_outsiders_other_tenants_and_unknown_apps_are_not_found(client, world, memories):
    login(client, world.outsider)
    assert client.get("/t/acme/apps/concierge_app/").status_code == 404
    login(client, world.globex_admin)
    assert client.get("/t/acme/apps/concierge_app/").status_code == 404
    assert client.get("/t/globex/apps/sports_portal/").status_code == 404  # acme's app, asked of globex
    assert client.get("/t/globex/apps/nope/").status_code == 404


def test_holds_and_retention_are_shown(client, world, memories):
    LegalHold.objects.create(tenant=world.acme, app=world.acme_concierge, reason="case 42", created_by="legal")
    LegalHold.objects.create(tenant=world.acme, user_id="alice", reason="case 43", created_by="legal")
    LegalHold.objects.create(
        tenant=world.acme, app=world.acme_sports, user_id="bob", reason="case 44", created_by="legal"
    )
    RetentionPolicy.objects.create(app=world.acme_concierge, max_age_days=30)
    login(client, world.acme_admin)
    html = client.get("/t/acme/apps/concierge_app/").content.decode()
    assert "this app: case 42" in html and "1 hold on single people here" in html
    assert "memories older than 30 days" in html
    html = client.get("/t/acme/apps/sports_portal/").content.decode()
    assert "none on this app" in html and "case 42" not in html


def test_an_offboarded_app_shows_its_tombstone_and_receipt(client, world, memories):
    app = world.acme_sports
    App.objects.filter(pk=app.pk).update(status=App.Status.OFFBOARDED)
    receipt = {
        "remaining": 0,
        "verified_at": "2026-12-06T12:00:00+00:00",
        "per_app": {"sports_portal": {"memories": 1, "history_rows": 1, "messages": 0, "remaining": 0}},
    }
    job = Job.objects.create(
        kind=Job.Kind.OFFBOARD_APP,
        tenant=world.acme,
        app=app,
        requested_by="acme-admin",
        state=Job.State.SUCCEEDED,
        params={"app_id": "sports_portal"},
        receipt=receipt,
    )
    login(client, world.acme_admin)
    response = client.get("/t/acme/apps/sports_portal/")
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="tombstone"' in html
    assert 'data-testid="remaining">0<' in html and f"/t/acme/jobs/{job.pk}/receipt.json" in html
    assert "Browse memories" not in html and "/offboard/" not in html
    overview = client.get("/t/acme/").content.decode()
    assert overview.count("Offboarded") == 1  # its badge once, and still a link to the tombstone
    assert 'href="/t/acme/apps/sports_portal/"' in overview
    assert "?app=sports_portal" not in overview  # no link into a browser that has no such app any more
    # Its offboard URL and old links to its memories lead to the receipt, not to a 404 or a 400.
    for url in ("/t/acme/apps/sports_portal/offboard/", "/t/acme/memories/?app=sports_portal"):
        again = client.get(url)
        assert again.status_code == 302 and again["Location"] == "/t/acme/apps/sports_portal/"
    started = client.post("/t/acme/apps/sports_portal/offboard/start/", {"confirm": "sports_portal"})
    assert started.status_code == 302 and started["Location"] == "/t/acme/apps/sports_portal/"
    assert Job.objects.filter(app=app, kind=Job.Kind.OFFBOARD_APP).count() == 1
    # Other tenants' offboarded apps, and unknown ids, stay 404.
    App.objects.filter(pk=world.globex_other.pk).update(status=App.Status.OFFBOARDED)
    assert client.get("/t/acme/apps/other_app/offboard/").status_code == 404
    assert client.get("/t/acme/memories/?app=other_app").status_code == 400
    assert client.get("/t/acme/apps/nope/offboard/").status_code == 404


def test_a_frozen_app_says_so(client, world, memories):
    App.objects.filter(pk=world.acme_sports.pk).update(status=App.Status.FROZEN)
    login(client, world.acme_admin)
    html = client.get("/t/acme/apps/sports_portal/").content.decode()
    assert 'data-testid="app-status">Frozen (offboarding scheduled)<' in html


def test_the_app_page_charts_writes_and_deletions_from_the_audit_trail(client, world, memories):
    from memadmin.memory import services
    from tenants.scoping import scope_for_membership

    services.memory_delete(scope=scope_for_membership(world.acme_admin), memory_id=memories.bob.id)
    login(client, world.acme_admin)
    html = client.get("/t/acme/apps/concierge_app/").content.decode()
    assert 'data-testid="chart-writes">2<' in html  # alice's food and bob, written through the service
    assert 'data-testid="chart-deletions">1<' in html
    assert "<svg" in html and 'role="img"' in html and "The numbers, day by day" in html
    sports = client.get("/t/acme/apps/sports_portal/").content.decode()
    assert 'data-testid="chart-writes">1<' in sports and 'data-testid="chart-deletions">0<' in sports


def test_the_chart_counts_imported_memories_as_written(client, world, memories):
    from memadmin.memory.imports import ImportRow, memory_import_write
    from tenants.scoping import scope_for_membership

    scope = scope_for_membership(world.acme_admin)
    rows = [ImportRow(id=f"imp-{i}", memory=f"imported fact {i}", user_id="carol") for i in range(3)]
    assert memory_import_write(scope=scope, app_id="concierge_app", rows=rows)["memories"] == 3
    # The same rows again are all stored already: nothing is written, nothing is charted.
    assert memory_import_write(scope=scope, app_id="concierge_app", rows=rows)["memories"] == 0
    login(client, world.acme_admin)
    html = client.get("/t/acme/apps/concierge_app/").content.decode()
    assert 'data-testid="chart-writes">5<' in html  # alice's food, bob and the three imported


def test_index_health_says_the_documents_written_since_the_last_check(client, world, memories, add, settings):
    """Documents now against keys counted earlier read as a contradiction ("3 documents ... 2 keys, drift 0")
    unless the page says both figures of the check and what was written since."""
    from memadmin.memory.collections import app_health

    settings.MEMADMIN_INDEX_HEALTH_MAX_AGE = 0  # FT.INFO read anew: the documents now include the next write
    before = app_health(app=world.acme_concierge.app_ref()).num_docs
    add(world.acme, "concierge_app", "carol", "Carol collects stamps")
    login(client, world.acme_admin)
    html = client.get("/t/acme/apps/concierge_app/").content.decode()
    span = re.search(r'data-testid="index-health".*?<span class="muted"[^>]*>(.*?)</span>\s*(<p|</div>)', html, re.S)
    figures = re.sub(r"<[^>]+>", "", span.group(1))
    health = app_health(app=world.acme_concierge.app_ref())
    assert health.num_docs == before + 1 and health.drift == 0
    assert f"{health.num_docs} documents now" in figures
    assert f"{health.keys} key" in figures and f"and {health.docs_at_check} document" in figures
    assert f"{health.docs_since_check} written since" in figures and health.docs_since_check >= 1
