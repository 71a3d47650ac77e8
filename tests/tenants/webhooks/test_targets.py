"""Where a webhook may point: the SSRF rules, as an attacker would try them."""

from __future__ import annotations

import ipaddress

import pytest

from memadmin.memory.errors import ValidationError
from tenants.webhooks.targets import (
    TargetRefused,
    address_refusal,
    target_check,
    target_parse,
    target_resolve,
)

ALLOWED_URLS = [
    "https://hooks.example.com/memadmin",
    "https://hooks.example.com:8443/in?token=abc",
    "https://93.184.215.14/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://bücher.example/hook",  # IDNA
]
REFUSED_URLS = {
    "ftp://hooks.example.com/": "https://",
    "file:///etc/passwd": "https://",
    "gopher://127.0.0.1:6379/_FLUSHALL": "https://",
    "javascript:alert(1)": "https://",
    "https://user:pass@hooks.example.com/": "user name or password",
    "https://": "invalid host",
    "https://hooks.example.com:99999/": "invalid host or port",
    "https://hooks.example.com/a b": "spaces or control",
    "https://hooks.example.com/\x00": "spaces or control",
    "http://hooks.example.com/": "https://",  # plain http with no network allowed
    "https://127.0.0.1/": "private or local",
    "https://localhost/": "private or local",
    "https://api.localhost/": "private or local",
    "https://10.1.2.3/": "private or local",
    "https://192.168.0.1/": "private or local",
    "https://172.16.5.4/": "private or local",
    "https://100.64.0.1/": "private or local",  # CGNAT
    "https://[::1]/": "private or local",
    "https://[fd00::1]/": "private or local",
    "https://[::ffff:10.0.0.1]/": "private or local",  # IPv4-mapped
    "https://[64:ff9b::a00:1]/": "private or local",  # NAT64 of 10.0.0.1
    "https://[2002:a00:1::]/": "private or local",  # 6to4 of 10.0.0.1
    "https://169.254.169.254/latest/meta-data/": "link-local",  # cloud metadata
    "https://[fe80::1]/": "link-local",
    "https://0.0.0.0/": "link-local, multicast or unspecified",
    "https://224.0.0.1/": "link-local, multicast or unspecified",
    "https://255.255.255.255/": "reserved",
    "https://240.0.0.1/": "reserved",
    "https://192.0.2.10/": "private or local",  # documentation range: not global
    "https://" + "a" * 2000 + ".example/": "longer than",
}


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_public_https_urls_are_accepted(settings, url):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    assert target_check(url) == url


@pytest.mark.parametrize("url,reason", REFUSED_URLS.items(), ids=[u[:40] for u in REFUSED_URLS])
def test_hostile_urls_are_refused_when_saved(settings, url, reason):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    with pytest.raises(ValidationError, match=reason):
        target_check(url)


def test_allowed_networks_open_private_addresses_and_plain_http_there_only(settings):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("10.20.0.0/16"),)
    assert target_check("http://10.20.1.2:8080/in") == "http://10.20.1.2:8080/in"
    with pytest.raises(ValidationError, match="private or local"):
        target_check("https://10.21.0.1/")
    with pytest.raises(ValidationError, match="use https"):
        target_check("http://93.184.215.14/")
    # Never link-local or the metadata service, whatever the operator lists.
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("0.0.0.0/0"),)
    with pytest.raises(ValidationError, match="link-local"):
        target_check("http://169.254.169.254/")


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f000001", "017700000001", "127.1", "0177.0.0.1"])
def test_other_spellings_of_loopback_are_judged_by_the_address_they_resolve_to(settings, spelling):
    """The name is not an address literal to ipaddress, so saving defers to DNS; the resolver turns each into
    127.0.0.1, and delivery refuses it."""
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    with pytest.raises(TargetRefused, match="private or local"):
        target_resolve(target_parse(f"https://{spelling}/hook"))


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(settings):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    with pytest.raises(TargetRefused, match="localhost resolves to a private") as refused:
        target_resolve(target_parse("https://localhost./hook"))
    assert "127.0.0.1" not in str(refused.value)  # the name's address is not the caller's to learn
    with pytest.raises(TargetRefused, match="does not resolve"):
        target_resolve(target_parse("https://hooks.invalid/"))


def test_the_request_line_and_host_header():
    target = target_parse("https://Hooks.Example.com:8443/in/x?a=1&b=2#frag")
    assert (target.host, target.port, target.path) == ("hooks.example.com", 8443, "/in/x?a=1&b=2")
    assert target.host_header == "hooks.example.com:8443"
    assert target_parse("https://[2606:4700::1]/").host_header == "[2606:4700::1]"
    assert target_parse("http://h.example").path == "/"


def test_address_rules_directly(settings):
    settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS = ()
    assert address_refusal(ipaddress.ip_address("93.184.215.14"), scheme="https") is None
    assert "use https" in address_refusal(ipaddress.ip_address("93.184.215.14"), scheme="http")
    assert "private" in address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), scheme="https")
