"""memadmin/redact.py: Mem0's log lines quote memory texts; what any handler receives from Mem0 keeps the logger,
level and place, never the message or the exception's text."""

import logging

import pytest


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def mem0_logged():
    capture = Capture()
    logger = logging.getLogger("mem0.memory.main")
    level = logging.getLogger("mem0").level
    logging.getLogger("mem0").setLevel(logging.DEBUG)
    logger.addHandler(capture)
    yield logger, capture.lines
    logger.removeHandler(capture)
    logging.getLogger("mem0").setLevel(level)


def test_mem0_records_lose_their_text_at_every_level(mem0_logged):
    logger, lines = mem0_logged
    text = "Alice is allergic to peanuts"
    logger.info("Inserting 1 vectors: %s", text)
    logger.debug(f"Updated memory {text}")
    try:
        raise ValueError(f"bad memory {text}")
    except ValueError:
        logger.exception("Error processing memory action: %s", {"text": text})
    assert len(lines) == 3
    assert not any(text in line for line in lines), lines
    assert "(ValueError)" in lines[2] and all("Mem0's message withheld" in line for line in lines)


def test_other_loggers_keep_their_messages():
    capture = Capture()
    logger = logging.getLogger("memadmin.purge")
    logger.addHandler(capture)
    try:
        logger.warning("Purge of store %s failed", "second")
    finally:
        logger.removeHandler(capture)
    assert capture.lines == ["Purge of store second failed"]
