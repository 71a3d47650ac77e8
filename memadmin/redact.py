"""Keep link tokens (your-data pages, invitations) and memory texts out of every log.

The token is the whole credential of an end user's page, and it has to be in the
URL (the page works without JavaScript, from a link in an e-mail), so every log
line that names the path (runserver's and gunicorn's access lines, Django's
request log for 404/405/500, django.security.csrf for a failed CSRF check) would
otherwise hold a working key to someone's memories. The redaction happens where
log records are made (the record factory), so no logger, handler or propagation
path added later can see a token: a filter on a logger sees only that logger's
own records, which is how the CSRF log once slipped past.

Mem0's own log lines quote memory texts ("Error processing memory action: {...}", its INFO lines of what it
added or updated), at any level; a log file would keep an erased text for good. Its records keep their
logger, level and place, and lose their message and exception text.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(/(?:your-data|invitations)/)[^/\s?#\"']+")
_MARKERS = ("/your-data/", "/invitations/")
_installed = False


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


def _withheld(record: logging.LogRecord) -> logging.LogRecord:
    kind = f" ({record.exc_info[0].__name__})" if record.exc_info and record.exc_info[0] else ""
    record.msg = f"[Mem0's message withheld: it may quote memory text] {record.module}:{record.lineno}{kind}"
    record.args, record.exc_info, record.exc_text = (), None, None
    return record


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    if record.name == "mem0" or record.name.startswith("mem0."):
        return _withheld(record)
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
