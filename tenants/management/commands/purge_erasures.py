"""manage.py purge_erasures [--wait]: purge erased texts from disk now, without waiting for the worker's pass.

Rewrites the AOF (and RDB snapshot, where one is kept) of every store with erasures not yet purged, checkpoints
Mem0's history files and removes stray uploads and exports (memadmin/memory/purge.py, docs/erasure.md). Without
--wait the rewrites are started and not waited for: their marks stay, and the worker's next pass confirms them.
Exit 1 when something could not be purged.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.errors import StoreUnavailable
from tenants.jobs.sweep import erasure_purge_sweep


class Command(BaseCommand):
    help = "Purge erased memory texts from the AOF, RDB and history files now, and say what was done."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait", action="store_true", help="Wait for every AOF rewrite to finish and read its result back."
        )

    def handle(self, *args, wait=False, **options):
        try:
            report = erasure_purge_sweep(force=True, wait=wait)
        except StoreUnavailable as exc:
            raise CommandError(exc.message) from exc
        files, purge = report["files"], report["purge"]
        self.stdout.write(f"Stray files removed: {files['uploads']} uploads, {files['exports']} exports")
        if not purge.get("ran"):
            raise CommandError(f"No purge ran: {purge.get('busy') or purge.get('error') or 'nothing to do'}")
        if not purge["stores"]:
            self.stdout.write("No store had erasures waiting for a rewrite.")
        for name, line in purge["stores"].items():
            details = ", ".join(f"{key}={line[key]}" for key in ("aof", "rdb", "aof_rewrite_seconds") if key in line)
            self.stdout.write(f"Store {name}: {line['state']}" + (f" ({details})" if details else ""))
        history = purge["history"]
        self.stdout.write(
            f"History files: {history['files']} checkpointed, vacuumed: "
            f"{', '.join(history['vacuumed']) or 'none'}"
            + (f"; busy: {', '.join(history['busy'])}" if history["busy"] else "")
        )
        self.stdout.write(
            f"Run {purge['id']}: {'complete' if purge['complete'] else 'INCOMPLETE'} in {purge['seconds']} s"
        )
        if options.get("verbosity", 1) > 1:
            self.stdout.write(json.dumps(purge, indent=2, sort_keys=True))
        if not purge["complete"] and wait:
            raise CommandError("Some erased text could not be purged (see above).")
