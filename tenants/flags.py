"""Named flags over a model's status field, shared by the tenants app's model modules."""


def flag(field: str, *values: str) -> property:
    """A named flag over a status field (``app.is_offboarded``, ``job.is_running``): templates ask these and
    never compare status strings (tests/test_architecture.py)."""
    return property(lambda self: getattr(self, field) in values)
