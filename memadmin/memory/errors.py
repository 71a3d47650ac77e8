"""Typed errors of the memory service; views map them to HTTP statuses."""

import errno


class MemoryServiceError(Exception):
    status = 500

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(MemoryServiceError):
    """Bad input from the caller (400)."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, **details):
        super().__init__(message, field=field, **details)
        self.field = field


class NotFound(MemoryServiceError):
    """Missing, or outside the caller's scope: the two are indistinguishable on purpose (404)."""

    status = 404

    def __init__(self, message: str = "Memory not found.", **details):
        super().__init__(message, **details)


class PermissionDenied(MemoryServiceError):
    """In scope, but the principal's role may not do this (403)."""

    status = 403


class Conflict(MemoryServiceError):
    """The app is frozen or offboarded, or the operation clashes with state (409/410)."""

    status = 409


class AppPaused(MemoryServiceError):
    """A tenant admin paused the app's API writes; reads keep working (423 Locked, naming the app)."""

    status = 423


class StoreUnavailable(MemoryServiceError):
    """Valkey cannot be reached; never reported as 'no memories' (503)."""

    status = 503

    def __init__(self, message: str = "The memory store is unreachable.", **details):
        super().__init__(message, **details)


class StoreRefusesWrites(StoreUnavailable):
    """The store answers but refuses to write: Valkey cannot persist (MISCONF), is out of memory (OOM) or is a
    read-only replica (READONLY), or the disk under the data dir is full (SQLite "database or disk is full",
    ENOSPC). A 503 whose message names the cause; ``cause`` is one of CAUSES."""

    CAUSES = ("persistence_failing", "out_of_memory", "read_only", "disk_full")

    def __init__(self, message: str, *, cause: str, **details):
        super().__init__(message, cause=cause, **details)
        self.cause = cause


class IncompleteDeletion(MemoryServiceError):
    """A deletion was verified and memories remain; the caller must not report success."""

    status = 500


def disk_full(exc: BaseException) -> StoreRefusesWrites | None:
    """``exc`` as a StoreRefusesWrites when it says the disk is full: SQLite's "database or disk is full"
    (Mem0's history, the Django database; Django wraps it in its own OperationalError) or ENOSPC, also as the
    cause of what was raised while handling it (Mem0's ROLLBACK after a failed COMMIT: "no transaction is
    active")."""
    seen = 0
    while exc is not None and seen < 5:
        text = str(exc)
        if "database or disk is full" in text or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            return StoreRefusesWrites(
                f"The disk under the data dir is full; nothing more can be stored until space is freed: {text}",
                cause="disk_full",
            )
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
