"""Which app an API request was about, noted while it runs (the request log's app column). Imports nothing
of the project: the API's authentication and scoping note apps here while DRF is still loading them."""

from __future__ import annotations

import contextvars


class RequestApps:
    """The apps one request named (a write's target, the app_ids of its filters) and, failing those, the one
    app its scope reaches."""

    def __init__(self):
        self.named: set[str] = set()
        self.scope: tuple[str, ...] = ()

    def app_id(self) -> str:
        if len(self.named) == 1:
            return next(iter(self.named))
        if not self.named and len(self.scope) == 1:
            return self.scope[0]
        return ""


current_apps: contextvars.ContextVar[RequestApps | None] = contextvars.ContextVar("memadmin_request_apps", default=None)


def note_apps(app_ids) -> None:
    """The API's scoping calls this with the app_ids a request resolved (tenants/api/app_targets.py)."""
    apps = current_apps.get()
    if apps is not None:
        apps.named.update(app_ids)


def note_scope_apps(app_ids) -> None:
    apps = current_apps.get()
    if apps is not None:
        apps.scope = tuple(app_ids)
