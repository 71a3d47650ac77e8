"""Typed errors of the memory service; views map them to HTTP statuses."""


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


class StoreUnavailable(MemoryServiceError):
    """Valkey cannot be reached; never reported as 'no memories' (503)."""

    status = 503

    def __init__(self, message: str = "The memory store is unreachable.", **details):
        super().__init__(message, **details)


class IncompleteDeletion(MemoryServiceError):
    """A deletion was verified and memories remain; the caller must not report success."""

    status = 500
