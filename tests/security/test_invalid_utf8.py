"""Bytes that are no UTF-8 (``%ff``, ``%c3`` alone, an overlong ``%c0%af``) in an id, whoever sends them.

Django decodes query strings and form bodies with errors="replace" (``%ff`` -> U+FFFD) and re-escapes broken
bytes in the path (``/%ff/`` -> the text "%FF"): either way a different id than the one sent, valid enough to
act on ("deleted 0", or another user's data under the literal "%FF"). They are a 400 that says why, before
any view reads them, for every kind of caller.
"""

from __future__ import annotations

import importlib
from urllib.parse import unquote_to_bytes

import pytest
from django.test import RequestFactory
from django.urls import reverse

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.scoping import scope_for_membership
from tests.support.hostile import assert_json_error, principals, send

CALLS = [
    ("delete", "/v1/memories/?user_id={raw}"),
    ("get", "/v1/entities/?user_id={raw}"),
    ("delete", "/v1/memories/?user_id=alice&agent_id={raw}"),
]
BROKEN = ["%ff", "%c3", "%c0%af", "a%80b", "%ed%a0%80"]  # the last: a UTF-8 encoded surrogate


def _count(world, user_id="alice") -> int:
    scope = scope_for_membership(world.acme_admin)
    return selectors.memory_count(scope=scope, filters=filter_from_fields(user_id=user_id))


@pytest.mark.parametrize("raw", BROKEN)
def test_the_api_refuses_broken_utf8_in_query_strings_and_paths(hostile_world, raw):
    before = _count(hostile_world)
    for who in principals(hostile_world, hostile_world.acme):
        if who.kind == "end_user":
            continue  # no API access at all; its pages are below
        for method, url in CALLS:  # paths: through the WSGI application, below
            url = url.format(raw=raw)
            body = assert_json_error(send(who.client, method, url), 400)
            assert "UTF-8" in body["detail"], (who.name, method, url, body)
    assert _count(hostile_world) == before


def test_the_field_is_named_when_it_is_a_query_parameter(hostile_world):
    who = principals(hostile_world, hostile_world.acme)[3]  # acme:key
    body = assert_json_error(send(who.client, "delete", "/v1/memories/?app_id=concierge_app&user_id=%ff"), 400)
    assert body["error"]["field"] == "user_id" and body["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("raw", BROKEN[:2])
def test_the_dashboard_and_your_data_pages_refuse_it_too(hostile_world, staff_client, raw):
    admin = staff_client("acme", "admin")
    page = admin.get(reverse("user", kwargs={"tenant_slug": "acme"}) + f"?user_id={raw}")
    assert page.status_code == 400 and "UTF-8" in page.content.decode()
    form = admin.post(
        reverse("user_erase", args=["acme"]),
        f"user_id={raw}&confirm_user_id={raw}",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 400 and "UTF-8" in form.content.decode()
    token = hostile_world.links["acme"].token
    assert staff_client("acme", "viewer").get(f"/your-data/{token}/?q={raw}").status_code == 400


def test_valid_non_ascii_ids_still_work(hostile_world):
    who = principals(hostile_world, hostile_world.acme)[3]  # acme:key
    deleted = send(who.client, "delete", "/v1/memories/?app_id=concierge_app&user_id=%C3%A9lodie")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 0  # a real id; nobody of that name
    assert send(who.client, "get", "/v1/entities/?user_id=%C3%A9lodie").status_code == 200
    # "%ff" typed as text is an id like any other (escaped once: %25ff), in a path or a query string.
    assert_json_error(send(who.client, "get", "/v1/memories/%25ff/history/"), 404)
    assert send(who.client, "delete", "/v1/memories/?app_id=concierge_app&user_id=%25ff").status_code == 200


def _through_wsgi(path: str, method: str = "GET", **headers) -> tuple[int, bytes]:
    """The request as gunicorn and runserver hand it over (the test client rewrites PATH_INFO itself first)."""
    from django.core import signals
    from django.db import close_old_connections

    application = importlib.import_module("memadmin.wsgi").application
    environ = RequestFactory()._base_environ(
        PATH_INFO=unquote_to_bytes(path).decode("latin-1"), REQUEST_METHOD=method, **headers
    )
    answer = {}
    # As Django's test client does: the test's transaction must survive the request's end.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, lambda status, _headers: answer.update(status=status)))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return int(answer["status"].split()[0]), body


@pytest.mark.parametrize("raw", BROKEN)
def test_broken_utf8_in_a_path_is_a_400_in_the_api_and_the_dashboard(hostile_world, monkeypatch, raw):
    monkeypatch.setenv("MEMADMIN_PRELOAD_EMBEDDER", "0")
    before = _count(hostile_world)
    key = {"HTTP_AUTHORIZATION": f"Token {hostile_world.keys['acme'].full}"}
    for method, path, headers in (
        ("DELETE", f"/v2/entities/user/{raw}/", key),
        ("GET", f"/v1/memories/{raw}/history/", key),
        ("DELETE", f"/v2/entities/user/{raw}/", {}),  # nobody: refused all the same
        ("GET", f"/t/acme/memories/concierge_app/{raw}/", {}),
        ("GET", f"/your-data/{hostile_world.links['acme'].token}/memories/{raw}/x/delete/", {}),
    ):
        status, body = _through_wsgi(path, method, **headers)
        assert status == 400 and b"UTF-8" in body, (path, status, body[:300])
    assert _count(hostile_world) == before
    # The same bytes, escaped as text (%25ff): an id like any other, and not found.
    status, _ = _through_wsgi(f"/v1/memories/{raw.replace('%', '%25')}/history/", "GET", **key)
    assert status == 404
