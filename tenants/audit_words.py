"""Audit events in words, for the people who read the log: "Viewed memories of u_alice", not "memory.list".

The stored action codes stay as they are (the CSV and the filter's values keep them); only what the page
shows is translated. An action this table does not know yet is shown as its code in words.
"""

from __future__ import annotations

# action -> (the phrase alone, the phrase with what it was about). {user}, {app}, {name}, {role}, {member},
# {email} come from the event; when one is missing the phrase alone is shown.
PHRASES: dict[str, tuple[str, str]] = {
    "memory.list": ("Viewed memories", "Viewed memories of {user}"),
    "memory.search": ("Searched memories", "Searched memories of {user}"),
    "memory.get": ("Opened a memory", "Opened a memory of {user}"),
    "memory.export": ("Exported memories", "Exported memories of {user}"),
    "memory.add": ("Stored memories", "Stored memories for {user}"),
    "memory.update": ("Changed a memory", "Changed a memory of {user}"),
    "memory.edit": ("Edited a memory", "Edited {edited} of a memory of {user}"),
    "memory.delete": ("Deleted a memory", "Deleted a memory of {user}"),
    "memory.delete_matching": ("Deleted memories", "Deleted memories of {user}"),
    "user.erase_requested": ("Asked to erase a person's memories", "Asked to erase every memory of {user}"),
    "user.erase": ("Erased a person's memories", "Erased every memory of {user}"),
    "link.issue": ("Issued a your-data link", "Issued a your-data link for {user}"),
    "link.revoke": ("Revoked a your-data link", "Revoked the your-data link of {user}"),
    "app.offboard_requested": ("Asked to offboard an app", "Asked to offboard {app}"),
    "app.offboard": ("Offboarded an app", "Offboarded {app}"),
    "app.pause": ("Paused an app's API writes", "Paused the API writes of {app}"),
    "app.resume": ("Resumed an app's API writes", "Resumed the API writes of {app}"),
    "retention.apply": ("Applied the retention policy", "Applied the retention policy to {app}"),
    "export.requested": ("Asked for an export to a file", "Asked for an export of {app} to a file"),
    "export.completed": ("Finished an export to a file", "Finished an export of {app} to a file"),
    "export.download": ("Downloaded an export file", "Downloaded the export file of {app}"),
    "export.failed": ("A download stopped before its end", "A download of {app} stopped before its end"),
    "job.cancelled": ("Cancelled a job", "Cancelled a job on {app}"),
    "webhook.text_sent": ("A webhook sent a memory's text", "The webhook “{name}” sent a memory's text of {user}"),
    "apikey.create": ("Created an API key", "Created the API key “{name}”"),
    "apikey.revoke": ("Revoked an API key", "Revoked the API key “{name}”"),
    "invitation.create": ("Invited someone", "Invited {email} as {role}"),
    "invitation.resend": ("Sent an invitation again", "Sent the invitation of {email} again"),
    "invitation.cancel": ("Withdrew an invitation", "Withdrew the invitation of {email}"),
    "invitation.accept": ("Accepted an invitation", "Accepted the invitation of {email} as {role}"),
    "member.role": ("Changed a member's role", "Made {member} {role}"),
    "member.remove": ("Removed a member", "Removed {member} from the tenant"),
    "memory.import": ("Imported memories", "Imported memories into {app}"),
    "apikey.offboarding_on": ("Let an API key offboard apps", "Let the API key “{name}” offboard apps"),
    "apikey.offboarding_off": ("Stopped an API key offboarding apps", "Stopped the API key “{name}” offboarding apps"),
    "api.refused": ("Refused an API key",) * 2,
    "api.auth_failed": ("A sign-in to the API failed",) * 2,
    "api.key_locked": ("Locked an API key prefix after failed sign-ins",) * 2,
    "project.update": ("Changed the project's settings",) * 2,
    "webhook.create": ("Created a webhook", "Created the webhook “{name}”"),
    "webhook.update": ("Changed a webhook", "Changed the webhook “{name}”"),
    "webhook.delete": ("Deleted a webhook", "Deleted the webhook “{name}”"),
    "webhook.rotate_secret": ("Rotated a webhook's signing secret", "Rotated the secret of the webhook “{name}”"),
    "webhook.test": ("Sent a test event to a webhook", "Sent a test event to the webhook “{name}”"),
    "webhook.disabled": ("Turned off a failing webhook", "Turned off the failing webhook “{name}”"),
}


def _unknown(action: str) -> str:
    # An action this table does not know yet still reads as words ("webhook.create" -> "Webhook create").
    return action.replace(".", " ").replace("_", " ").capitalize()


def audit_action_label(action: str) -> str:
    """The action alone, for the filter's choices: "Viewed memories"."""
    return PHRASES.get(action, (_unknown(action),))[0]


def audit_describe(event) -> str:
    """One line for a row of the log: "Viewed memories of u_alice", "Created the API key “crm-backend”"."""
    alone, about = PHRASES.get(event.action) or (_unknown(event.action),) * 2
    details = event.details if isinstance(event.details, dict) else {}
    named = {key: details.get(key) for key in ("name", "role", "member", "email", "edited")}
    values = {"user": event.user_id, "app": event.app_id, **named}
    try:
        text = about.format(**values)
    except (KeyError, IndexError):
        return alone
    # A placeholder left empty ("of " + nothing) means the event was not about one person or app.
    missing = [key for key in values if "{" + key + "}" in about and not values[key]]
    return alone if missing else text
