"""A real data dir: every file 0600 (or stricter), every dir 0700, the dir itself 0700."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from memadmin.memory.embedded import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent.parent

SCRIPT = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from memadmin.memory import services
from tenants.scoping import scope_for_membership
from tenants.models import App, Membership, Tenant
from tenants.jobs.export_files import exports_dir, write_export
from django.contrib.auth import get_user_model
tenant = Tenant.objects.create(name="Acme", slug="acme")
App.objects.create(tenant=tenant, app_id="concierge_app", is_default=True)
user = get_user_model().objects.create_user("boss", password="correct-horse-battery")
membership = Membership.objects.create(user=user, tenant=tenant, role="admin")
services.memory_add(scope=scope_for_membership(membership), app_id="concierge_app",
                    messages="Alice likes tea", user_id="alice")
write_export(items=[{"memory": "Alice likes tea"}], path=exports_dir() / "x.json", fmt="json", compress=False)
print("done")
"""


def test_a_fresh_data_dir_is_private(tmp_path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("VALKEY_URL", "DATABASE_URL", "SECRET_KEY")}
    env.update(
        MEMADMIN_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="memadmin.settings",
        MEMADMIN_EMBEDDER_THREADS="1",
        HF_HUB_OFFLINE="1",
        MEM0_TELEMETRY="False",
    )
    try:
        # Run from a permissive umask, as a shell or service manager might leave it.
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "done" in result.stdout
        seen = set()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.rglob("*"):
            if path.is_socket():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path.relative_to(data_dir)} is {oct(mode)}"
            seen.add(path.relative_to(data_dir).parts[0])
            if path.name in ("db.sqlite3", "secret_key", "password", "x.json") or path.suffix == ".sqlite3":
                assert mode == 0o600, path
        # The places that hold people's data were all there to check.
        assert {"db.sqlite3", "secret_key", "history", "exports", "valkey"} <= seen
        assert any((data_dir / "history").glob("*.sqlite3"))
        assert any((data_dir / "valkey" / "appendonlydir").iterdir())
    finally:
        EmbeddedServer(data_dir).stop()


def test_an_older_world_readable_data_dir_is_closed(tmp_path):
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    env = {**os.environ, "MEMADMIN_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "memadmin.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
