"""Playwright helpers for the real-browser tests (tests/browser, tests/security/test_csp_browser.py).

Nothing here sleeps for a fixed time: on a loaded machine a swap can take seconds, so every wait is for a
condition (htmx quiet, a text on the page), with generous limits.
"""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Playwright's expect() gives up after 5 s by default; a page under load (the suite's workers, other jobs on the
# machine) can take longer than that to render, and a timeout there is a false failure, not a finding.
EXPECT_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 30_000
# A background job (a real worker process) on a loaded machine: minutes would be a hang, seconds are normal.
JOB_TIMEOUT_MS = 60_000

# Installed in every page before its scripts run: counts the htmx requests in flight and notes when htmx last
# did anything, so a test can wait until every swap (and the requests a swap's settle triggers) has finished.
HTMX_WATCH = """
(() => {
  const state = {requests: new Set(), last: Date.now()};
  window.__htmx = state;
  const note = () => { state.last = Date.now(); };
  // Each request leaves the set on its XHR's loadend, which fires however it ends (load, error, abort,
  // time-out), even when htmx's own afterRequest lands on an element the swap already removed.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const xhr = event.detail.xhr;
    state.requests.add(xhr);
    xhr.addEventListener("loadend", () => { state.requests.delete(xhr); note(); });
    note();
  });
  for (const name of ["htmx:beforeSwap", "htmx:afterSwap", "htmx:afterSettle", "htmx:trigger", "htmx:load"]) {
    document.addEventListener(name, note);
  }
})();
"""
# Quiet: no request in flight, no element swapping or settling, and nothing htmx did for the last 150 ms (a
# settle's HX-Trigger-After-Settle starts the next request in that window).
HTMX_QUIET = """() => !window.__htmx || (window.__htmx.requests.size === 0
  && !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")
  && Date.now() - window.__htmx.last > 150)"""


def htmx_settled(page, timeout: float = ACTION_TIMEOUT_MS) -> None:
    """Wait until htmx has finished every request and swap the last action started."""
    page.wait_for_function(HTMX_QUIET, timeout=timeout, polling=50)


def sign_in(page, username, password="correct-horse-battery"):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
