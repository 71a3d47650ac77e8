"""Keep link tokens (your-data pages, invitations) out of request logs.

The token is the whole credential of an end user's page, and it has to be in the
URL (the page works without JavaScript, from a link in an e-mail), so every access
log would otherwise hold a working key to someone's memories. The filter sits on
the loggers that write request lines: runserver's (``manage.py serve``), Django's
request log (404/405/500 name the path) and gunicorn's access log.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(/(?:your-data|invitations)/)[^/\s?#\"']+")
REQUEST_LOGGERS = ("django.server", "django.request", "gunicorn.access", "gunicorn.error")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem to report, not ours
            return True
        if "/your-data/" in message or "/invitations/" in message:
            record.msg, record.args = redact(message), ()
        return True


def install() -> None:
    """Attach the filter to the request loggers (filters on a logger see its own records only)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
            logger.addFilter(RedactLinkTokens())
