"""E-mail settings (invitations) are read from the environment strictly, like every other setting."""

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS = Path(__file__).resolve().parents[2] / "memadmin" / "settings.py"
NAMES = (
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
    "MEMADMIN_INVITATION_DAYS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (*NAMES, "DEBUG", "SECRET_KEY", "DATABASE_URL", "VALKEY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMADMIN_DATA_DIR", str(tmp_path))


def load():
    return runpy.run_path(str(SETTINGS))


def test_a_redacting_console_by_default():
    loaded = load()
    # The console, with invitation links redacted: server output ends up in logs (see test_invitations.py).
    assert loaded["EMAIL_BACKEND"] == "memadmin.mail.ConsoleBackend"
    assert loaded["DEFAULT_FROM_EMAIL"] == "memadmin <memadmin@localhost>"
    assert loaded["MEMADMIN_INVITATION_DAYS"] == 7


def test_smtp_when_a_host_is_set(monkeypatch):
    monkeypatch.setenv("EMAIL_HOST", "smtp.example.com")
    monkeypatch.setenv("EMAIL_PORT", "465")
    monkeypatch.setenv("EMAIL_HOST_USER", "mailer")
    monkeypatch.setenv("EMAIL_HOST_PASSWORD", "s3cret")
    monkeypatch.setenv("EMAIL_USE_TLS", "0")
    monkeypatch.setenv("EMAIL_USE_SSL", "1")
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "Acme memadmin <noreply@acme.example>")
    loaded = load()
    assert loaded["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (loaded["EMAIL_HOST"], loaded["EMAIL_PORT"]) == ("smtp.example.com", 465)
    assert loaded["EMAIL_HOST_USER"] == "mailer"
    assert loaded["EMAIL_USE_SSL"] is True and loaded["EMAIL_USE_TLS"] is False
    assert loaded["DEFAULT_FROM_EMAIL"] == "Acme memadmin <noreply@acme.example>"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "70000"}, "EMAIL_PORT"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_USE_TLS": "maybe"}, "EMAIL_USE_TLS"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_SSL"),
        ({"EMAIL_HOST_PASSWORD": "set without a host"}, "EMAIL_HOST"),
        ({"DEFAULT_FROM_EMAIL": "not an address"}, "DEFAULT_FROM_EMAIL"),
        ({"MEMADMIN_INVITATION_DAYS": "0"}, "MEMADMIN_INVITATION_DAYS"),
    ],
)
def test_bad_values_stop_the_process(monkeypatch, env, named):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=named):
        load()
