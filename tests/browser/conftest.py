"""Real-browser tests: Debian's chromium driven by Playwright, against pytest-django's live server."""

import os
from pathlib import Path

import pytest

from tests.tenants.views.conftest import add, memories, world  # noqa: F401  (shared fixtures)

# Playwright's sync API keeps an event loop in this thread; Django's ORM would refuse to run beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("MEMADMIN_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server, transactional_db):
    """A fresh browser context (own cookies) per call; all closed after the test."""
    contexts = []

    def _new_page():
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 860},
                                      base_url=live_server.url)  # fmt: skip
        context.set_default_timeout(20_000)
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


def sign_in(page, username, password="correct-horse-battery"):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
