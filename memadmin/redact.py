"""Keep link tokens (your-data pages, invitations) out of every log.

The token is the whole credential of an end user's page, and it has to be in the
URL (the page works without JavaScript, from a link in an e-mail), so every log
line that names the path (runserver's and gunicorn's access lines, Django's
request log for 404/405/500, django.security.csrf for a failed CSRF check) would
otherwise hold a working key to someone's memories. The redaction happens where
log records are made (the record factory), so no logger, handler or propagation
path added later can see a token: a filter on a logger sees only that logger's
own records, which is how the CSRF log once slipped past.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(/(?:your-data|invitations)/)[^/\s?#\"']+")
_MARKERS = ("/your-data/", "/invitations/")
_installed = False


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the handler's problem to report, not ours
        return record
    if any(marker in message for marker in _MARKERS):
        record.msg, record.args = redact(message), ()
    return record


def install() -> None:
    """Wrap the log record factory once per process: every record is born redacted."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: _redacted(make(*args, **kwargs)))
    _installed = True
