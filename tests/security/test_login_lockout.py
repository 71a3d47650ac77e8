"""Login lockout: per username+IP, and per IP so one address cannot spray many usernames."""

import pytest
from django.conf import settings

from tests.factories import UserFactory


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def sign_in(client, username, password, ip):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client):
    return "_auth_user_id" in client.session


def test_one_address_spraying_many_usernames_is_locked_out(client, alice):
    for n in range(settings.MEMADMIN_LOGIN_IP_FAILURE_LIMIT):
        sign_in(client, f"nobody{n}", "guess", "203.0.113.7")  # one failure per username: under the pair limit
    locked = sign_in(client, "alice", "correct-horse-battery", "203.0.113.7")
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert not signed_in(client)
    # Another address is not affected.
    assert sign_in(client, "alice", "correct-horse-battery", "198.51.100.1").status_code == 302
    assert signed_in(client)


def test_a_few_failures_from_a_shared_address_do_not_lock_it(client, alice):
    for n in range(settings.AXES_FAILURE_LIMIT_PER_USER + 2):
        sign_in(client, f"colleague{n}", "typo", "203.0.113.8")
    assert sign_in(client, "alice", "correct-horse-battery", "203.0.113.8").status_code == 302


def test_one_username_from_one_address_locks_at_the_lower_limit(client, alice):
    for _ in range(settings.AXES_FAILURE_LIMIT_PER_USER):
        sign_in(client, "alice", "wrong", "203.0.113.9")
    assert sign_in(client, "alice", "correct-horse-battery", "203.0.113.9").status_code == 429
    assert not signed_in(client)


def test_signing_in_does_not_reset_the_address_count(client, alice):
    """Else anyone with one account could sign in between guesses and spray without limit."""
    limit = settings.MEMADMIN_LOGIN_IP_FAILURE_LIMIT
    for n in range(limit - 1):
        sign_in(client, f"nobody{n}", "guess", "203.0.113.10")
    assert sign_in(client, "alice", "correct-horse-battery", "203.0.113.10").status_code == 302
    client.post("/logout/")
    sign_in(client, "nobody-last", "guess", "203.0.113.10")
    assert sign_in(client, "alice", "correct-horse-battery", "203.0.113.10").status_code == 429
