"""Named flags over a model's status field (``app.is_offboarded``, ``job.is_running``): templates ask these and
never compare status strings (tests/test_architecture.py)."""

from __future__ import annotations


def status_flag(field: str, *values: str) -> property:
    """A read-only property that is true while ``field`` holds one of ``values``."""
    return property(lambda self: getattr(self, field) in values)
