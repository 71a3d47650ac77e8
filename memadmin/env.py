"""Strict readers for settings that come from the environment.

A bad value raises ImproperlyConfigured naming the variable: a typo in
production must stop the process, not silently fall back to a default.
"""

import base64
import ipaddress
import os
import re
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:  # NaN fails this too
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> tuple:
    """A comma-separated list of CIDRs ("10.0.0.0/8,::1/128"); a bare address is its own /32 or /128."""
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must list networks like 10.0.0.0/8, got {item!r}") from None
    return tuple(networks)


def env_ed25519_seed(name: str) -> bytes | None:
    """An Ed25519 private key as its 32-byte seed in base64 (``openssl rand -base64 32``), or None when unset."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return None
    try:
        seed = base64.b64decode(raw, validate=True)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ImproperlyConfigured(f"{name} must be 32 random bytes in base64 (openssl rand -base64 32)")
    return seed


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def private_files() -> None:
    """Files and dirs this process creates are the owner's only (0600/0700): the SQLite DB, Mem0's
    history DBs, exports and the embedded Valkey's AOF hold people's memories and keys."""
    os.umask(0o077)


def data_dir() -> Path:
    path = Path(os.environ.get("MEMADMIN_DATA_DIR") or "var").expanduser().resolve()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"MEMADMIN_DATA_DIR {path} cannot be created: {exc}") from exc
    try:
        # Also a dir an older version created 0755: nothing inside is then reachable for other users,
        # whatever the modes of the files already in it.
        path.chmod(0o700)
    except PermissionError:
        pass  # owned by someone else (a mounted volume): its owner decides
    return path


def secret_key(directory: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into the data dir."""
    value = os.environ.get("SECRET_KEY")
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters")
        return value
    path = directory / "secret_key"
    if not path.exists():
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


_RATE_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate like ``600/min`` as (requests, seconds); ``off`` disables it. Anything else stops the process."""
    raw = (os.environ.get(name) or default).strip().lower()
    if raw in ("off", "none", "0"):
        return None
    count, _, period = raw.partition("/")
    seconds = _RATE_PERIODS.get(period.strip())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ImproperlyConfigured(f"{name} must look like 600/min (periods: s, min, h, day) or be 'off', got {raw!r}")
    return int(count), seconds


def env_email(name: str, default: str) -> str:
    """An address, bare or as 'Name <address>' (what DEFAULT_FROM_EMAIL accepts)."""
    from email.utils import parseaddr

    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    raw = (os.environ.get(name) or default).strip()
    try:
        validate_email(parseaddr(raw)[1])
    except ValidationError:
        raise ImproperlyConfigured(f"{name} must be an e-mail address (or 'Name <address>'), got {raw!r}") from None
    return raw


_STORE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
VALKEY_SCHEMES = ("valkey://", "valkeys://", "redis://", "rediss://", "unix://")


def env_stores(name: str) -> dict[str, str]:
    """Extra memory stores as ``name=url`` pairs separated by commas or whitespace (the embedded server or
    VALKEY_URL is always the store called ``default``). A URL with a comma in its password percent-encodes it."""
    stores: dict[str, str] = {}
    for item in (os.environ.get(name) or "").replace(",", " ").split():
        store, sep, url = item.partition("=")
        store = store.strip()
        if not sep or not _STORE_NAME.match(store):
            raise ImproperlyConfigured(
                f"{name} must list name=url pairs with lower-case names of up to 32 letters, digits, - or _; "
                f"got {item.split('=')[0]!r}"
            )
        if store == "default" or store in stores:
            raise ImproperlyConfigured(f"{name}: the store name {store!r} is taken (default is VALKEY_URL's).")
        if not url.startswith(VALKEY_SCHEMES):
            schemes = ", ".join(VALKEY_SCHEMES)
            raise ImproperlyConfigured(f"{name}: the URL of store {store!r} must start with {schemes}")
        stores[store] = url
    return stores
