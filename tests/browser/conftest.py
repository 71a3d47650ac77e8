"""Real-browser tests: Debian's chromium driven by Playwright, against pytest-django's live server."""

import os

import pytest

from tests.support.browser import ACTION_TIMEOUT_MS, ARTIFACTS, HTMX_WATCH
from tests.support.dashboard import add, memories, world  # noqa: F401  (shared fixtures)

# Playwright's sync API keeps an event loop in this thread; Django's ORM would refuse to run beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def new_page(browser, live_server, transactional_db):
    """A fresh browser context (own cookies) per call; all closed after the test."""
    contexts = []

    def _new_page():
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 860}, base_url=live_server.url
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.add_init_script(HTMX_WATCH)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield _new_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def _shot(page, name):
        page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar would otherwise land mid-page
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return _shot
