"""Where a webhook may point: the rules against server-side request forgery.

A webhook URL is chosen by a tenant admin (or an API key) and fetched by the server, from inside its network.
The rules, checked when a URL is saved and again on the addresses it resolves to right before each delivery
(DNS can change in between, and a name can resolve to several addresses):

- ``https://`` to public addresses. ``http://`` only to addresses the operator listed in
  MEMADMIN_WEBHOOK_ALLOW_NETWORKS (their own network, where plain HTTP may be fine); the public internet
  gets TLS, with the certificate checked against the URL's host name.
- Private, loopback, shared (CGNAT), documentation and other non-global addresses are refused unless inside
  MEMADMIN_WEBHOOK_ALLOW_NETWORKS. IPv4 addresses dressed as IPv6 (``::ffff:10.0.0.1``, NAT64, 6to4) are
  judged as the IPv4 address they carry; decimal, octal and hex spellings (``http://2130706433/``) resolve
  to the address they mean and are judged as such.
- Link-local (``169.254.169.254``: cloud metadata services), multicast and unspecified addresses are refused
  whatever the setting: no webhook receiver lives there. Reserved ones (``240.0.0.0/4``, broadcast) too, unless
  listed.
- No user:password in the URL (it would be shown and logged), at most 2,000 characters.
- The connection goes to the address that was checked (no second lookup a rebinding DNS could answer
  differently); redirects are not followed; see delivery.py for timeouts and response size.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from memadmin.memory.errors import ValidationError

MAX_URL = 2000
SCHEMES = {"https": 443, "http": 80}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL, or what it resolves to now, is not a place webhooks may go; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # IDNA-encoded name or an address literal (without brackets)
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def _carried(ip: Address) -> Address:
    """The IPv4 address an IPv6 one stands for, if it stands for one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour:
            return ip.sixtofour
    return ip


def allowed_network(ip: Address) -> bool:
    return any(ip.version == net.version and ip in net for net in settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS)


def address_refusal(ip: Address, *, scheme: str, name: str | None = None) -> str | None:
    """Why a delivery may not go to ``ip`` (None: it may). ``name``: the host name ``ip`` was resolved from; the
    reason then names it and never the address, since what an internal name resolves to is the operator's
    network map, not the tenant's to learn by probing names."""
    ip = _carried(ip)
    subject = f"{name} resolves to" if name else f"{ip} is"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return f"{subject} a link-local, multicast or unspecified address; webhooks never go there."
    if allowed_network(ip):
        return None
    if ip.is_reserved and not ip.is_loopback:  # ::1 sits in IPv6's reserved ::/8
        return f"{subject} a reserved address; webhooks never go there."
    if not ip.is_global:
        return (
            f"{subject} a private or local address; webhooks go to public addresses unless the operator "
            "lists the network in MEMADMIN_WEBHOOK_ALLOW_NETWORKS."
        )
    if scheme != "https":
        return f"{subject} a public address: use https:// (plain http:// only inside MEMADMIN_WEBHOOK_ALLOW_NETWORKS)."
    return None


def target_parse(url) -> Target:
    """The URL's parts, or ValidationError saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url must be an http(s) URL.", field="url")
    url = url.strip()
    if len(url) > MAX_URL:
        raise ValidationError(f"url is longer than {MAX_URL} characters.", field="url")
    if any(ord(c) < 0x21 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in url):
        raise ValidationError("url contains spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced brackets ("https://[::1/"), or brackets around a non-IPv6 host
        raise ValidationError(
            "url has an invalid host: square brackets hold only an IPv6 address, as in https://[2001:db8::1]/.",
            field="url",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValidationError("url must start with https:// (or http:// inside your own network).", field="url")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url must not carry a user name or password; the signature authenticates.", field="url")
    try:
        port = parts.port or SCHEMES[scheme]
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise ValueError
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            host = host.encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        raise ValidationError("url has an invalid host or port.", field="url") from None
    path = parts.path or "/"
    return Target(scheme=scheme, host=host, port=port, path=f"{path}?{parts.query}" if parts.query else path)


def target_check(url) -> str:
    """For saving: the URL, stripped, when it passes what can be checked without DNS (an address literal, a
    localhost name, plain http with no network allowed); its resolved addresses are checked at each delivery."""
    target = target_parse(url)
    literal, name = _literal(target.host), None
    if literal is None and (target.host == "localhost" or target.host.endswith(".localhost")):
        literal, name = ipaddress.ip_address("127.0.0.1"), target.host
    if literal is not None:
        refusal = address_refusal(literal, scheme=target.scheme, name=name)
        if refusal:
            raise ValidationError(refusal, field="url")
    elif target.scheme != "https" and not settings.MEMADMIN_WEBHOOK_ALLOW_NETWORKS:
        raise ValidationError(
            "url must use https:// (plain http:// goes only to networks the operator "
            "lists in MEMADMIN_WEBHOOK_ALLOW_NETWORKS).",
            field="url",
        )
    return url.strip()


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def target_resolve(target: Target) -> list[Address]:
    """Every address the host resolves to now, all of them allowed; otherwise TargetRefused. A name that
    resolves to one public and one private address is refused whole: the resolver picks, not us."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{target.host} does not resolve ({exc}).") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"{target.host} does not resolve.")
    name = None if _literal(target.host) else target.host
    for ip in addresses:
        refusal = address_refusal(ip, scheme=target.scheme, name=name)
        if refusal:
            raise TargetRefused(refusal)
    return addresses
