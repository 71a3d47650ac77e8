"""Two requests racing, made deterministic: the first one's transaction is held open while the second runs.

SQLite (IMMEDIATE transactions) serialises every writer, so a check-then-write that forgot its lock only shows
on PostgreSQL, where the second transaction runs beside the first and cannot see its uncommitted rows. Tests
using this need the real transactions of ``@pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction


@dataclass
class Race:
    first: Any = None
    second: Any = None
    second_finished_while_first_open: bool = False


def race(first: Callable[[], Any], second: Callable[[], Any], *, hold: float = 1.0) -> Race:
    """Run ``first`` in a transaction left open; then ``second`` in another thread (its own connection) for up
    to ``hold`` seconds; then commit the first and wait for the second. Exceptions are re-raised here."""
    outcome, errors = Race(), []
    first_done, release = threading.Event(), threading.Event()

    def run_first():
        try:
            with transaction.atomic():
                outcome.first = first()
                first_done.set()
                release.wait(30)
        except Exception as exc:
            errors.append(exc)
        finally:
            first_done.set()
            connection.close()

    def run_second():
        try:
            outcome.second = second()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    one, two = threading.Thread(target=run_first), threading.Thread(target=run_second)
    one.start()
    first_done.wait(30)
    two.start()
    two.join(hold)
    outcome.second_finished_while_first_open = not two.is_alive()
    release.set()
    one.join(30)
    two.join(30)
    if errors:
        raise errors[0]
    return outcome


def run_coroutine(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (tests/browser) leaves an event loop running in
    the main thread for the rest of the session, and asyncio.run refuses to start inside a running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
