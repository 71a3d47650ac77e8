"""The default e-mail backend when no mail server is configured (no EMAIL_HOST).

Django's console backend prints each message, link included, to the web process's output, which supervisors,
containers and journald keep in logs that many people can read: an invitation link there is a membership of a
tenant (as admin, if so invited) for whoever reads it. This backend prints the same message with every link
token redacted, and the dashboard shows the inviting admin the link once, to hand over themselves
(``links_shown_to_the_inviter``).
"""

from __future__ import annotations

import copy

from django.conf import settings
from django.core.mail.backends.console import EmailBackend

from memadmin.redact import redact

BACKEND = "memadmin.mail.ConsoleBackend"


class ConsoleBackend(EmailBackend):
    def write_message(self, message):
        shown = copy.copy(message)  # the caller's message is left as it was
        shown.body = redact(message.body)
        if hasattr(message, "attach_alternative"):
            shown.alternatives = []
            for content, mimetype in message.alternatives:
                shown.attach_alternative(redact(content) if isinstance(content, str) else content, mimetype)
        super().write_message(shown)


def links_shown_to_the_inviter() -> bool:
    """No mail leaves this server: the person can get the link only from the admin who invited them."""
    return settings.EMAIL_BACKEND == BACKEND
