"""Who the client is behind a reverse proxy (tenants/http.py, MEMADMIN_TRUSTED_PROXIES): the address the audit
log records and per-address lockouts count against. X-Forwarded-For is anyone's to send; only what trusted
proxies appended is believed, from the right."""

import ipaddress
import runpy
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from memadmin.memory.models import AuditEvent
from tenants.http import client_ip
from tests.factories import UserFactory
from tests.support.hostile import api_client

PROXY = "127.0.0.1"


def trust(settings, *items: str) -> None:
    settings.MEMADMIN_TRUSTED_PROXIES = tuple(ipaddress.ip_network(i, strict=False) for i in items)


def address(remote: str, forwarded: str | None = None) -> str | None:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


def test_without_trusted_proxies_x_forwarded_for_is_never_read(settings):
    trust(settings)
    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert address(PROXY, "198.51.100.1") == PROXY


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        (PROXY, "198.51.100.1", "198.51.100.1"),  # nginx appended the client's address
        (PROXY, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own header is not believed
        (PROXY, "not-an-ip, 198.51.100.1", "198.51.100.1"),  # nor is its garbage
        (PROXY, "198.51.100.1, 10.0.0.5", "198.51.100.1"),  # two trusted hops: the load balancer's too
        ("10.1.2.3", "198.51.100.1, 10.0.0.5", "198.51.100.1"),  # a trusted network, not only an address
        (PROXY, "2001:db8::7", "2001:db8::7"),
        (PROXY, "", PROXY),  # a proxy that sent no header: itself
        (PROXY, "198.51.100.1, garbage", PROXY),  # a hop that is not an address ends the walk
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not through a trusted proxy: the header is ignored
        (PROXY, "10.0.0.5", "10.0.0.5"),  # only trusted hops: the leftmost of them
    ],
)
def test_through_trusted_proxies_the_rightmost_untrusted_hop_is_the_client(settings, remote, forwarded, expected):
    trust(settings, PROXY, "10.0.0.0/8")
    assert address(remote, forwarded) == expected


def test_a_bad_trusted_proxies_setting_stops_the_process(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMADMIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEMADMIN_TRUSTED_PROXIES", "127.0.0.1, nginx.internal")
    with pytest.raises(ImproperlyConfigured, match="MEMADMIN_TRUSTED_PROXIES"):
        runpy.run_path(str(Path(django_settings.BASE_DIR) / "memadmin" / "settings.py"))


@pytest.fixture
def behind_proxy(settings):
    trust(settings, PROXY)
    settings.MEMADMIN_API_AUTH_FAILURE_LIMIT = 5
    settings.MEMADMIN_API_KEY_LOCK_FAILURES = 3
    return settings


def test_api_lockouts_count_each_client_behind_the_proxy_not_the_proxy(hostile_world, behind_proxy):
    def ping(key, client):
        return api_client(key).get("/v1/ping/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client).status_code

    statuses = [ping(f"guess{i}.secret{i}", f"66.6.6.6, 198.51.100.{i % 2 + 1}") for i in range(4)]
    statuses += [ping(f"guess{i}.secret{i}", "198.51.100.1") for i in range(4, 8)]
    assert statuses == [401] * 7 + [429]  # .1 reached the limit at its fifth failure; .2 made two
    # Every other customer behind the same proxy is unaffected, and a forged left part does not escape.
    assert ping(hostile_world.keys["acme"].full, "198.51.100.2") == 200
    assert ping(hostile_world.keys["acme"].full, "198.51.100.9, 198.51.100.1") == 429


def test_the_audit_log_records_the_client_not_the_proxy(hostile_world, behind_proxy):
    client = api_client(hostile_world.keys["acme"].full)
    response = client.post(
        "/v3/memories/",
        {"filters": {"user_id": "u_alice"}},
        content_type="application/json",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4",
    )
    assert response.status_code == 200, response.content[:300]
    assert AuditEvent.objects.filter(tenant__slug="acme").latest("pk").ip == "198.51.100.4"


def test_sign_in_lockout_counts_each_client_behind_the_proxy(db, client, behind_proxy):
    UserFactory(username="alice")

    def sign_in(password, forwarded):
        return client.post(
            "/login/", {"username": "alice", "password": password}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded
        )

    for _ in range(behind_proxy.AXES_FAILURE_LIMIT_PER_USER):
        sign_in("wrong", "198.51.100.1")
    assert sign_in("correct-horse-battery", "198.51.100.1").status_code == 429
    assert sign_in("correct-horse-battery", "198.51.100.2").status_code == 302  # a colleague behind the same proxy
