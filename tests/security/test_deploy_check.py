"""`manage.py check --deploy` is clean with the production environment docs/security.md documents."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "memadmin.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://memadmin.example.com",
    "MEMADMIN_SECURE_COOKIES": "1",
    "MEMADMIN_SSL_REDIRECT": "1",
    "MEMADMIN_TRUST_X_FORWARDED_PROTO": "1",
    "MEMADMIN_HSTS_SECONDS": "31536000",
    "MEMADMIN_HSTS_INCLUDE_SUBDOMAINS": "1",
    "MEMADMIN_HSTS_PRELOAD": "1",
}


def check_deploy(tmp_path, **extra):
    # DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests of this session; a deployment must not have it.
    dropped = ("DEBUG", "VALKEY_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMADMIN_") and k not in dropped}
    env.update(PRODUCTION, MEMADMIN_DATA_DIR=str(tmp_path), SECRET_KEY=secrets.token_urlsafe(50), **extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_environment(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("name", "warning"), [("MEMADMIN_HSTS_SECONDS", "W004"), ("MEMADMIN_SSL_REDIRECT", "W008")])
def test_each_setting_is_what_silences_its_warning(tmp_path, name, warning):
    result = check_deploy(tmp_path, **{name: "0"})
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_bad_values_stop_the_process(tmp_path):
    result = check_deploy(tmp_path, MEMADMIN_HSTS_SECONDS="a year")
    assert result.returncode != 0 and "MEMADMIN_HSTS_SECONDS" in result.stderr
