"""Editing a memory on its page (tenants/views/memories.py memory_edit, memory_edit_save): the form, HTMX in
place, form errors as 400, who sees Edit, and what the page shows after a save."""

import json

import pytest

from memadmin.memory import history, selectors
from memadmin.memory.models import AuditEvent
from tenants.scoping import scope_for_membership
from tests.support.dashboard import HTMX, login

NEW = "Alice is vegan now and still hates olives"


def _urls(memory):
    page = f"/t/acme/memories/{memory.app_id}/{memory.id}/"
    return page, f"{page}edit/", f"{page}edit/save/"


def test_the_form_holds_the_memory_as_stored(client, world, memories):
    login(client, world.acme_support)
    _, edit, _ = _urls(memories.alice_food)
    page = client.get(edit)
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert memories.alice_food.memory in html and 'name="metadata"' in html and "Save" in html
    fragment = client.get(edit, **HTMX).content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="memory-body">')


def test_saving_in_place_shows_the_new_text_updated_time_and_history_row(client, world, memories):
    login(client, world.acme_support)
    page, _, save = _urls(memories.alice_food)
    before = client.get(page).content.decode()
    response = client.post(save, {"text": NEW, "metadata": "{}"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert f'data-testid="memory-text">{NEW}</h1>' in html
    assert html.count('class="timeline-item') == before.count('class="timeline-item') + 1
    assert "Saved: edited text." in html and 'hx-swap-oob="beforeend"' in html  # the toast
    stored = selectors.memory_find(scope=scope_for_membership(world.acme_support), memory_id=memories.alice_food.id)
    assert stored.memory == NEW and stored.updated_at is not None
    reloaded = client.get(page).content.decode()  # reload-safe: the page reads the store
    assert f'data-testid="memory-text">{NEW}</h1>' in reloaded and "UPDATE" in reloaded
    assert f'<span class="mono">{scope_for_membership(world.acme_support).actor}</span>' in reloaded  # the editor


def test_without_javascript_a_save_redirects_to_the_page(client, world, memories):
    login(client, world.acme_admin)
    page, _, save = _urls(memories.bob)
    response = client.post(save, {"text": memories.bob.memory, "metadata": '{"severity": "high"}'})
    assert response.status_code == 302 and response["Location"] == page
    html = client.get(page).content.decode()
    assert "Saved: edited metadata." in html and "severity" in html


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"user_id": "bob"}', "metadata cannot set reserved keys: user_id."),
        ('{"app_id": "x", "agent_id": "y"}', "metadata cannot set reserved keys: agent_id, app_id."),
        ('{"text_lemmatized": "x"}', "metadata cannot set reserved keys: text_lemmatized."),
        ("[1, 2]", "metadata must be a JSON object."),
        ("{not json", "Metadata is not valid JSON"),
        ('{"n": NaN}', "NaN is not a JSON number"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "nests"),
        (json.dumps({"blob": "x" * 70_000}), "metadata is over 65536 bytes of JSON."),
    ],
)
def test_bad_metadata_is_a_form_error_and_nothing_changes(client, world, memories, metadata, message):
    login(client, world.acme_admin)
    page, _, save = _urls(memories.alice_food)
    response = client.post(save, {"text": NEW, "metadata": metadata}, **HTMX)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&quot;", '"')
    stored = selectors.memory_find(scope=scope_for_membership(world.acme_admin), memory_id=memories.alice_food.id)
    assert stored.memory == memories.alice_food.memory
    assert not AuditEvent.objects.filter(action="memory.edit").exists()


def test_empty_text_is_a_form_error(client, world, memories):
    login(client, world.acme_admin)
    _, _, save = _urls(memories.alice_food)
    response = client.post(save, {"text": "   ", "metadata": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_viewers_see_no_edit_and_get_403(client, world, memories):
    login(client, world.acme_viewer)
    page, edit, save = _urls(memories.alice_food)
    assert 'href="' + edit not in client.get(page).content.decode()
    assert client.get(edit).status_code == 403
    assert client.post(save, {"text": NEW}).status_code == 403


def test_support_and_admins_see_edit(client, world, memories):
    page, edit, _ = _urls(memories.alice_food)
    for member in (world.acme_support, world.acme_admin):
        login(client, member)
        assert f'href="{edit}?next=' in client.get(page).content.decode()


def test_outsiders_and_other_tenants_get_404(client, world, memories):
    _, edit, save = _urls(memories.globex_alice)
    login(client, world.acme_admin)
    assert client.get(edit.replace("/t/acme/", "/t/globex/")).status_code == 404
    assert client.get(edit).status_code == 404  # globex's memory under acme's URL
    assert client.post(save, {"text": NEW, "metadata": "{}"}).status_code == 404


def test_save_is_post_only(client, world, memories):
    login(client, world.acme_admin)
    _, _, save = _urls(memories.alice_food)
    assert client.get(save).status_code == 405


def test_a_memory_deleted_before_the_save_is_a_404_and_stays_deleted(client, world, memories):
    login(client, world.acme_admin)
    page, _, save = _urls(memories.bob)
    client.post(f"{page}delete/", {"confirm": "yes"})
    response = client.post(save, {"text": NEW, "metadata": "{}"}, **HTMX)
    assert response.status_code == 404
    scope = scope_for_membership(world.acme_admin)
    collection = scope.app("concierge_app").collection
    assert history.history_for(collection, [memories.bob.id])[memories.bob.id] == []
    assert client.get(page).status_code == 404
