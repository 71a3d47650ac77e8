from django.http import QueryDict

from memadmin.memory.capabilities import ADMIN, CAPABILITIES, SUPPORT, VIEWER
from tenants.permissions import NAV, URL_CAPABILITIES, nav_links


def _labels(role, url_name="overview", query=""):
    return [(link["label"], link["current"]) for link in nav_links(CAPABILITIES[role], url_name, QueryDict(query))]


def test_every_nav_entry_opens_a_page_of_the_permission_table():
    assert all(link.url_name in URL_CAPABILITIES for link in NAV)
    assert all(link.current_on <= set(URL_CAPABILITIES) for link in NAV)


def test_the_nav_shows_each_role_the_pages_it_may_open_in_order():
    # Every member's "Audit log" shows them their own actions; the whole log and the activity feed are admins'.
    reading = ["Overview", "Memories", "Agents", "Runs", "Audit log"]
    assert [label for label, _ in _labels(VIEWER)] == reading
    support = ["Overview", "Memories", "End users", "Agents", "Runs", "Audit log", "Erasures", "Jobs"]
    assert [label for label, _ in _labels(SUPPORT)] == support
    admin = ["Overview", "Memories", "End users", "Agents", "Runs", "Data links", "Activity", "Audit log", "Members"]
    assert [label for label, _ in _labels(ADMIN)] == [*admin, "API keys", "Webhooks", "Erasures", "Jobs"]


def test_the_current_entry_follows_the_page_and_its_detail_pages():
    def current(url_name, query=""):
        return [label for label, is_current in _labels(ADMIN, url_name, query) if is_current]

    assert current("overview") == ["Overview"]
    assert current("memory") == ["Memories"]
    assert current("user") == ["End users"]
    assert current("agent") == ["Agents"]
    assert current("run") == ["Runs"]
    assert current("webhook") == ["Webhooks"]
    assert current("job") == ["Jobs"]
    assert current("audit", "category=activity") == ["Activity"]
    assert current("audit") == ["Audit log"]
    assert current("erasure_receipt") == []
    assert current(None) == []
