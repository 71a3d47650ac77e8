"""tenants/views/selection.py: bulk selection in memory tables. Ticked rows, the page, or every memory matching
the page's filters; a preview first ("N memories of M people in K apps"), the count typed back, a receipt per
person; export through the export job. Viewers see no selection; rows outside the scope are not found."""

import pytest

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from memadmin.memory.models import ErasureReceipt
from tenants.jobs.models import Job
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, login


@pytest.fixture
def stored(world, add):
    """acme: alice 3 (2 concierge, 1 sports, agent coach on one), bob 2 (concierge), dora 1; globex: alice 1."""
    m = {
        "a1": add(world.acme, "concierge_app", "alice", "Alice prefers window seats", agent_id="concierge"),
        "a2": add(world.acme, "concierge_app", "alice", "Alice flies to Lisbon in May", agent_id="concierge"),
        "a3": add(world.acme, "sports_portal", "alice", "Alice runs 10k on Saturdays", agent_id="coach"),
        "b1": add(world.acme, "concierge_app", "bob", "Bob prefers aisle seats", agent_id="concierge"),
        "b2": add(world.acme, "concierge_app", "bob", "Bob likes jazz", agent_id="concierge"),
        "d1": add(world.acme, "sports_portal", "dora", "Dora swims", agent_id="coach"),
        "g1": add(world.globex, "concierge_app", "alice", "Globex Alice likes sushi", agent_id="concierge"),
    }
    return m


def row(memory):
    return f"{memory.app_id} {memory.id}"


def count(world, **fields):
    return selectors.memory_count(scope=scope_for_membership(world.acme_admin), filters=filter_from_fields(**fields))


def test_memory_tables_offer_selection_to_whoever_may_delete_or_export(client, world, stored):
    for role, shown in (("admin", True), ("support", True), ("viewer", False)):
        login(client, getattr(world, f"acme_{role}"))
        for url, query in (
            ("/t/acme/memories/", {}),
            ("/t/acme/user/", {"user_id": "alice"}),
            ("/t/acme/agents/agent/", {"agent_id": "concierge"}),
        ):
            html = client.get(url, query).content.decode()
            assert ('data-testid="bulk-bar"' in html) is shown, (role, url)
            assert ('form="bulk"' in html) is shown, (role, url)
            assert ('data-testid="bulk-export"' in html) is (role == "admin"), (role, url)
    login(client, world.acme_support)
    browser = client.get("/t/acme/memories/", {"agent_id": "concierge"}).content.decode()
    assert "Select all <strong>4</strong> matching" in browser
    assert 'name="agent_id" value="concierge"' in browser  # the filter travels with "all matching"


def test_deleting_ticked_rows_previews_then_ends_in_a_receipt_per_person(support, world, stored):
    data = {"m": [row(stored["a1"]), row(stored["a3"]), row(stored["b1"])], "next": "/t/acme/memories/"}
    preview = support.post("/t/acme/selection/delete/", data)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "<strong>3</strong> memories of <strong>2</strong> people in <strong>2</strong> apps will be deleted" in html
    assert count(world) == 6  # nothing deleted by the preview

    wrong = support.post("/t/acme/selection/delete/", {**data, "confirm": "4"})
    assert wrong.status_code == 400 and "now holds 3 memories, not 4" in wrong.content.decode() and count(world) == 6

    done = support.post("/t/acme/selection/delete/", {**data, "confirm": "3"})
    assert done.status_code == 302
    assert count(world) == 3 and count(world, user_id="alice") == 1 and count(world, user_id="bob") == 1
    receipts = ErasureReceipt.objects.filter(tenant=world.acme).order_by("user_id")
    assert [(r.user_id, r.kind, r.memories) for r in receipts] == [("alice", "memories", 2), ("bob", "memories", 1)]
    page = support.get(done["Location"]).content.decode()
    assert 'data-testid="deleted">3<' in page and all(str(r.pk) in page for r in receipts)
    assert "← Back" in page and 'href="/t/acme/memories/"' in page


def test_select_all_matching_deletes_what_the_filter_matches_across_pages(support, world, stored):
    data = {"all": "1", "agent_id": "concierge", "page_m": [row(stored["a1"])], "page_all": "1"}
    html = support.post("/t/acme/selection/delete/", data).content.decode()
    assert "<strong>4</strong> memories of <strong>2</strong> people in <strong>1</strong> app will be deleted" in html
    done = support.post("/t/acme/selection/delete/", {**data, "confirm": "4"})
    assert done.status_code == 302
    assert count(world, agent_id="concierge") == 0 and count(world) == 2
    assert sorted(ErasureReceipt.objects.filter(tenant=world.acme).values_list("user_id", "kind", "memories")) == [
        ("alice", "agent", 2),
        ("bob", "agent", 2),
    ]
    globex = scope_for_membership(world.globex_admin)
    assert selectors.memory_count(scope=globex) == 1  # another tenant's concierge memories stay


def test_the_page_box_selects_the_pages_rows_without_javascript(support, world, stored):
    data = {"page_all": "1", "page_m": [row(stored["d1"]), row(stored["b2"])], "m": [row(stored["a1"])]}
    html = support.post("/t/acme/selection/delete/", data).content.decode()
    assert "<strong>2</strong> memories of <strong>2</strong> people" in html


def test_everything_without_a_filter_is_refused(support, world, stored):
    for data in ({"all": "1", "confirm": "6"}, {"all": "1"}):  # refused before the preview asks for a count
        response = support.post("/t/acme/selection/delete/", data)
        assert response.status_code == 400 and "needs at least one filter" in response.content.decode()
    assert count(world) == 6


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"m": "no-space-here"},
        {"m": "concierge_app a\u202eb"},
        {"all": "1", "user_id": "a b"},
        {"m": [f"concierge_app m{i}" for i in range(201)]},
    ],
)
def test_bad_selections_are_400(support, stored, data):
    assert support.post("/t/acme/selection/delete/", data).status_code == 400


def test_rows_of_another_tenant_are_not_found(support, world, stored):
    response = support.post("/t/acme/selection/delete/", {"m": [row(stored["a1"]), row(stored["g1"])], "confirm": "2"})
    assert response.status_code == 404 and count(world) == 6


def test_export_of_all_matching_is_an_export_job_of_exactly_those(client, world, stored):
    admin = login(client, world.acme_admin)
    html = admin.post("/t/acme/selection/export/", {"all": "1", "user_id": "alice"}).content.decode()
    assert (
        "<strong>3</strong> memories of <strong>1</strong> person in <strong>2</strong> apps will be exported" in html
    )
    done = admin.post("/t/acme/selection/export/", {"all": "1", "user_id": "alice", "confirm": "3"})
    job = Job.objects.get(tenant=world.acme, kind=Job.Kind.EXPORT_TENANT)
    assert done.status_code == 302 and done["Location"] == f"/t/acme/jobs/{job.pk}/"
    assert job.params["selection"] == {"op": "eq", "field": "user_id", "value": "alice"}
    assert "Only the memories a memory table selected" in admin.get(done["Location"]).content.decode()
    support = login(client, world.acme_support)
    assert support.post("/t/acme/selection/export/", {"all": "1", "user_id": "alice"}).status_code == 403


def test_the_results_partial_recounts_its_selection_total(support, world, stored):
    before = support.get("/t/acme/memories/", {"user_id": "bob"}, **HTMX).content.decode()
    assert "Select all <strong>2</strong> matching" in before
    support.post("/t/acme/selection/delete/", {"m": [row(stored["b1"])], "confirm": "1"})
    after = support.get("/t/acme/memories/", {"user_id": "bob"}, HTTP_MEMADMIN_RECOUNT="1", **HTMX).content.decode()
    assert "Select all <strong>1</strong> matching" in after
