"""Django and Valkey for the bench: its own data dir, SQLite DB and (by default) its own embedded Valkey.

Everything is set in the environment BEFORE django.setup(), so the gunicorn
workers of the HTTP benchmark inherit exactly the same configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("var/bench")


@dataclass
class BenchEnv:
    data_dir: Path
    valkey_url: str
    embedded: bool

    def stop_embedded(self) -> bool:
        """Stop the bench's own server (its data stays in the AOF; the next start re-indexes, which is slow)."""
        if not self.embedded:
            return False
        from memadmin.memory.embedded import EmbeddedServer

        return EmbeddedServer(self.data_dir).stop() is not None


def configure(
    data_dir: Path | str = DEFAULT_DATA_DIR, valkey_url: str | None = None, *, migrate: bool = True
) -> BenchEnv:
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MEMADMIN_DATA_DIR"] = str(data_dir)
    # The bench never touches the project's own database, whatever the shell exported.
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'db.sqlite3'}"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["DJANGO_SETTINGS_MODULE"] = "memadmin.settings"
    embedded = not valkey_url
    if embedded:
        # A dedicated server under the bench dir, detached and reused between runs: a loaded 1M store
        # survives the process, and restarting it would rebuild every HNSW graph from the AOF.
        from memadmin.memory.embedded import EmbeddedServer

        valkey_url = EmbeddedServer(data_dir).ensure().url
    os.environ["VALKEY_URL"] = valkey_url

    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
    return BenchEnv(data_dir=data_dir, valkey_url=valkey_url, embedded=embedded)


def raw_client(url: str | None = None, timeout: float | None = None):
    """A plain valkey-py client: the baseline's path and the loader's, outside the service layer."""
    import valkey

    return valkey.Valkey.from_url(url or os.environ["VALKEY_URL"], socket_timeout=timeout)
