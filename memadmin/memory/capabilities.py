"""The one table of who may do what: role -> capabilities.

The dashboard (tenants/permissions.py: URL name -> capability), the API (tenants/api/permissions.py:
endpoint -> capability) and the memory service (Scope.require) all ask this table; nothing else compares
role strings.
"""

from __future__ import annotations

# Roles. Staff roles are the ones a Membership can hold; the others belong to principals that are not people
# of the tenant: an API key, an end user's signed link, a background job acting for whoever asked.
VIEWER, SUPPORT, ADMIN = "viewer", "support", "admin"
API, END_USER, SYSTEM = "api", "enduser", "system"
STAFF_ROLES = (VIEWER, SUPPORT, ADMIN)

# Capabilities.
READ = "read"  # list, search and open memories
READ_USER = "read_user"  # look one person up across every app (the user page)
EXPORT = "export"  # export one person's memories
DELETE = "delete"  # delete memories (one, a person's, a filter's), and erase a person
WRITE = "write"  # add and update memories
EDIT = "edit"  # correct one memory's text or metadata on its page (a person's right to rectification)
EXPORT_APP = "export_app"  # export a whole app or tenant
RUN_JOBS = "run_jobs"  # see background jobs and their receipts
READ_RECEIPTS = "read_receipts"  # erasure receipts: whoever may delete may see the proof of it
OFFBOARD = "offboard"  # delete a whole app, provably
MOVE_APP = "move_app"  # move a whole app to another memory store (Valkey server)
PAUSE_APP = "pause_app"  # pause and resume an app's API writes
MANAGE_KEYS = "manage_keys"
MANAGE_LINKS = "manage_links"  # issue and revoke "your data" links
MANAGE_MEMBERS = "manage_members"
READ_AUDIT = "read_audit"
MANAGE_WEBHOOKS = "manage_webhooks"  # webhooks: where events go, and their delivery logs
READ_EVENTS = "read_events"  # the activity feed (adds, updates, deletions, erasures, offboardings, exports)
MANAGE_PROJECT = "manage_project"  # the tenant's Mem0 "project" settings (custom_instructions)
# The API request log: which key called what, from which address, how it ended. Admins only: it is about the
# keys (which only admins see) and the tenant's servers, not about a person, so support has no need of it.
READ_REQUESTS = "read_requests"

_SUPPORT = frozenset({READ, READ_USER, EXPORT, DELETE, EDIT, RUN_JOBS, READ_RECEIPTS})
_ADMIN = _SUPPORT | {
    WRITE,
    EXPORT_APP,
    OFFBOARD,
    MOVE_APP,
    PAUSE_APP,
    MANAGE_KEYS,
    MANAGE_LINKS,
    MANAGE_MEMBERS,
    READ_AUDIT,
    MANAGE_WEBHOOKS,
    READ_EVENTS,
    MANAGE_PROJECT,
    READ_REQUESTS,
}

CAPABILITIES: dict[str, frozenset[str]] = {
    VIEWER: frozenset({READ}),
    SUPPORT: _SUPPORT,
    ADMIN: _ADMIN,
    # An app server: everything the Mem0 API offers (webhooks included: MemoryClient.create_webhook), "your
    # data" links for its users, and following the jobs its deletions become (GET /v1/jobs/<id>/, within its
    # apps), the activity feed of its apps and the tenant's extraction instructions (unrestricted keys only);
    # offboarding one app, as the Mem0 Platform's delete_all(app_id=...) does (an app-restricted key, or one
    # whose admin turned it off, has it withheld by its scope: Scope.withheld); no staff pages, never the members.
    API: frozenset(
        {
            READ,
            EXPORT,
            DELETE,
            WRITE,
            EXPORT_APP,
            RUN_JOBS,
            MANAGE_LINKS,
            MANAGE_WEBHOOKS,
            READ_EVENTS,
            MANAGE_PROJECT,
            OFFBOARD,
            READ_RECEIPTS,
        }
    ),
    END_USER: frozenset({READ, EXPORT, DELETE, READ_RECEIPTS}),
    # A job runs what its requester was allowed to start (checked when it was requested).
    SYSTEM: frozenset({READ, EXPORT, DELETE, WRITE, EXPORT_APP, OFFBOARD, MOVE_APP}),
}
ALL = frozenset().union(*CAPABILITIES.values())

# For refusals: "The viewer role cannot <description>."
DESCRIPTIONS = {
    READ: "read memories",
    READ_USER: "open a person's page",
    EXPORT: "export memories",
    DELETE: "delete memories",
    WRITE: "write memories",
    EDIT: "edit memories",
    EXPORT_APP: "export a whole app",
    RUN_JOBS: "see background jobs",
    READ_RECEIPTS: "read erasure receipts",
    OFFBOARD: "offboard an app",
    MOVE_APP: "move an app to another memory store",
    PAUSE_APP: "pause or resume an app's API writes",
    MANAGE_KEYS: "manage API keys",
    MANAGE_LINKS: 'manage "your data" links',
    MANAGE_MEMBERS: "manage members",
    READ_AUDIT: "read the audit log",
    MANAGE_WEBHOOKS: "manage webhooks",
    READ_EVENTS: "read the activity feed",
    MANAGE_PROJECT: "change the project's settings",
    READ_REQUESTS: "read the API request log",
}


def role_can(role: str, capability: str) -> bool:
    if capability not in ALL:
        raise KeyError(f"{capability!r} is not a capability")
    return capability in CAPABILITIES.get(role, frozenset())


def refusal(role: str, capability: str) -> str:
    return f"The {role} role cannot {DESCRIPTIONS[capability]}."


def capabilities_of(role: str) -> frozenset[str]:
    return CAPABILITIES.get(role, frozenset())


class Can:
    """A principal's capabilities as named flags, for templates and views: ``can.offboard``, ``can.read_audit``.

    Built from the table above, so a new capability is a flag at once; a name that is no capability raises
    (a template would otherwise read a typo as "not allowed": tests/test_architecture.py checks the names).
    """

    __slots__ = ("_granted",)

    def __init__(self, granted: frozenset[str]):
        self._granted = frozenset(granted)

    def __getattr__(self, name: str) -> bool:
        if name not in ALL:
            raise AttributeError(f"{name!r} is not a capability")
        return name in self._granted

    def __repr__(self) -> str:
        return f"Can({sorted(self._granted)})"


NOTHING = Can(frozenset())
