"""The crawler: every role walks every page it reaches by links from the demo data, in a real
Chromium, pressing every button and submitting every form that does not destroy the demo; the destructive
ones run on a throwaway tenant. It fails on a 5xx, an htmx answer that carries a whole page (<html> or a
<header>), a console error (CSP refusals included), a count on the page that the store contradicts, and an
axe-core violation of impact serious or critical. Every kind of page is photographed at 1366 and 390 px
into test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import Resolver404, resolve
from playwright.sync_api import expect

from memadmin.memory import selectors
from memadmin.memory.filters import filter_from_fields
from tenants.jobs.models import Job
from tenants.jobs.runners import run_job
from tenants.links import data_link_issue
from tenants.models import Membership, Tenant, TenantAPIKey
from tenants.scoping import scope_for_membership
from tests.factories import AppFactory, MembershipFactory, TenantFactory, UserFactory
from tests.support.browser import ARTIFACTS, JOB_TIMEOUT_MS, htmx_settled, sign_in

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = (1366, 390)
DEMO_PASSWORD = "memadmin-demo"
# Pages of one kind (URL name + the names of its query parameters) visited per role: the demo has 20 users
# and 80 memories, and the 21st user page finds nothing the 2nd did not.
PER_KIND = 2
# Links never followed: downloads (checked by their own tests), leaving, Django admin.
NOT_PAGES = re.compile(r"/(export|download)/|export\.|receipt\.json|\.csv|/logout/|^/admin/|/api/")
# Forms whose action destroys or revokes something: the demo keeps them; the throwaway tenant gets them.
DESTRUCTIVE = {
    "memory_delete",
    "user_delete",
    "user_erase",
    "user_run_delete",
    "user_agent_delete",
    "link_revoke",
    "api_key_revoke",
    "member_role",
    "member_remove",
    "invitation_cancel",
    "job_cancel",
    "app_offboard_start",
    "your_data_delete_memory",
    "your_data_delete_all",
    "logout",
}
DESTRUCTIVE |= {"agent_delete", "run_delete", "selection_delete"}  # the Agents and Runs pages, bulk selection
SERIOUS = ("serious", "critical")


@dataclass
class Crawl:
    """One role's walk: what it saw, and everything that went wrong on the way."""

    page: object
    role: str
    problems: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    photographed: set[str] = field(default_factory=set)
    forms_done: set[str] = field(default_factory=set)
    unsent: list[str] = field(default_factory=list)  # forms the browser would not send (see submit)
    fragments: list = field(default_factory=list)
    pages: int = 0

    def __post_init__(self):
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"{self.page.url}: script error {error}"))
        self.page.on("response", self._response)
        self.page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    def _console(self, message):
        if message.type == "error":
            self.problems.append(f"{self.page.url}: console error {message.text}")

    def _response(self, response):
        if response.status >= 500:
            self.problems.append(f"{response.request.method} {response.url}: {response.status}")
        if response.request.headers.get("hx-request") and response.status < 300:
            self.fragments.append(response)

    def check_fragments(self):
        """An htmx answer is a fragment: a page inside the page (header, nav, h1 twice) is a bug."""
        for response in self.fragments:
            try:
                body = response.text()
            except Exception:  # a redirect, or a body the browser already let go of
                continue
            if re.search(r"<html|<header", body, re.IGNORECASE):
                self.problems.append(f"htmx {response.request.method} {response.url} answered a whole page")
        self.fragments.clear()
        headers = self.page.locator("header").count()
        if headers > 1:
            self.problems.append(f"{self.page.url}: {headers} <header> elements after a swap")

    def kind(self, url: str) -> str | None:
        parts = urlsplit(url)
        try:
            match = resolve(parts.path)
        except Resolver404:
            return None
        return f"{match.url_name}?{','.join(sorted(parse_qs(parts.query)))}"

    def axe(self, where: str):
        self.page.evaluate(AXE)  # evaluate is not subject to the page's CSP; a <script> tag would be
        result = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for violation in result["violations"]:
            if violation["impact"] in SERIOUS:
                nodes = "; ".join(node["target"][0] if node["target"] else "?" for node in violation["nodes"][:3])
                self.problems.append(f"{where}: axe {violation['impact']} {violation['id']} ({nodes})")

    def photograph(self, kind: str):
        if kind in self.photographed:
            return
        self.photographed.add(kind)
        name = re.sub(r"[^a-z0-9_-]+", "-", f"crawl-{self.role}-{kind}".lower()).strip("-")
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            overflow = self.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 1:
                self.problems.append(f"{self.page.url}: {overflow}px wider than a {width}px screen")
            self.page.evaluate("window.scrollTo(0, 0)")
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            if width == 390:
                self.phone_menu()
        self.page.set_viewport_size({"width": 1366, "height": 900})

    def phone_menu(self):
        toggle = self.page.locator(".menu-toggle")
        if toggle.count() and toggle.is_visible():
            toggle.click()
            links = self.page.locator("#mainnav a")
            if links.count() and not links.first.is_visible():
                self.problems.append(f"{self.page.url}: the phone menu opens no links")
            toggle.click()

    def visit(self, url: str) -> list[str]:
        """Open a page, check it, photograph its kind once; the same-origin page links it offers."""
        response = self.page.goto(url)
        self.pages += 1
        if response is None or response.status >= 400:
            self.problems.append(f"GET {url}: {response.status if response else 'no response'}")
            return []
        self.page.wait_for_load_state("load")
        where = f"{self.role} {urlsplit(url).path}"
        self.axe(where)
        self.check_fragments()
        self.photograph(self.kind(url) or url)
        origin = f"{urlsplit(self.page.url).scheme}://{urlsplit(self.page.url).netloc}"
        hrefs = self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        return [h.split("#")[0] for h in hrefs if h.startswith(origin) and not NOT_PAGES.search(urlsplit(h).path)]

    def walk(self, start: str, scope_prefix: str):
        queue = [start]
        while queue:
            url = queue.pop(0)
            path = urlsplit(url).path
            if url in self.visited or not path.startswith(scope_prefix):
                continue
            kind = self.kind(url)
            if kind is None or self.seen.get(kind, 0) >= PER_KIND:
                continue
            self.visited.add(url)
            self.seen[kind] = self.seen.get(kind, 0) + 1
            links = self.visit(url)
            self.press_buttons(url)
            queue.extend(link for link in links if link not in self.visited)

    # --- buttons and forms ----------------------------------------------------------------------------------

    def press_buttons(self, url: str):
        """Every plain button (copy, menu, disclosures) and every form that keeps the demo intact."""
        page = self.page
        for button in page.locator("button[type=button]:visible, details > summary:visible").all():
            button.click()
        htmx_settled(page)
        self.check_fragments()
        forms = page.locator("form").evaluate_all(
            "fs => fs.map((f, i) => ({i, action: f.getAttribute('hx-post') || f.getAttribute('hx-get') || f.action,"
            " method: (f.getAttribute('hx-post') ? 'post' : f.method || 'get').toLowerCase()}))"
        )
        for form in forms:
            action_kind = self.kind(form["action"]) or form["action"]
            name = action_kind.split("?")[0]
            key = f"{form['method']} {name}"
            if name in DESTRUCTIVE or key in self.forms_done:
                continue
            self.forms_done.add(key)
            self.submit(url, form["i"])

    def submit(self, url: str, index: int):
        page = self.page
        if page.url != url:
            page.goto(url)
        form = page.locator("form").nth(index)
        if not form.is_visible():
            return
        for box in form.locator("input:visible, textarea:visible").all():
            kind = box.get_attribute("type") or "text"
            if kind in ("checkbox", "radio"):
                if box.get_attribute("required") is not None:
                    box.check()
            elif kind in ("text", "search", "email") and not box.input_value():
                name = box.get_attribute("name") or ""
                value = {"q": "hotel", "user_id": "u_alice", "email": f"crawler{len(self.forms_done)}@example.com"}
                box.fill(value.get(name, f"crawler-{len(self.forms_done)}") if kind != "email" else value["email"])
            elif kind == "url" and not box.input_value():
                box.fill("https://hooks.invalid/in")  # never resolves: a webhook test fails fast, nothing is sent
            elif kind == "number" and not box.input_value():
                box.fill("1")
        for upload in form.locator("input[type=file]").all():
            upload.set_input_files(
                {
                    "name": "crawler.ndjson",
                    "mimeType": "application/x-ndjson",
                    "buffer": b'{"id": "crawler-1", "memory": "crawled", "user_id": "u_crawler"}\n',
                }
            )
        submit = form.locator("button[type=submit], button:not([type]), input[type=submit]").first
        if not submit.count():
            return
        if not form.evaluate("f => f.checkValidity()"):
            # The browser would refuse to send it (a required choice the crawler cannot guess): no request to
            # wait for. Said, not hidden: the journeys submit these forms with real values.
            self.unsent.append(f"{self.role}: {urlsplit(url).path} form {index}")
            return
        with page.expect_response(
            lambda r: r.request.method in ("GET", "POST") and r.request.resource_type in ("document", "xhr", "fetch")
        ):
            submit.click()
        page.wait_for_load_state("load")
        htmx_settled(page)
        self.check_fragments()
        self.axe(f"{self.role} after submitting a form on {urlsplit(url).path}")


def store_total(membership) -> int:
    return selectors.memory_counts(scope=scope_for_membership(membership)).total


def page_total(page) -> int:
    """The memories figure a page shows: the browser's total, or the overview's / app page's stat card."""
    total = page.get_by_test_id("total")
    if total.count():
        return int(total.first.inner_text())
    stat = page.locator(".stat", has=page.locator(".stat-label", has_text=re.compile(r"^memories$")))
    return int(stat.locator(".stat-value").inner_text())


@pytest.fixture
def demo(transactional_db, live_server, valkey_server):
    """seed_demo's tenants, apps, staff and people (two memories each: the pages are the same with fewer)."""
    ARTIFACTS.mkdir(exist_ok=True)
    call_command("seed_demo", per_user=2, stdout=io.StringIO(), stderr=io.StringIO())
    # A key's requests, so the API request log has rows (one of them an error) for the admin's walk.
    _, key = TenantAPIKey.objects.create_key(name="demo-server", tenant=Tenant.objects.get(slug="acme"))
    api = Client(headers={"Authorization": f"Token {key}"})
    assert api.get("/v1/entities/").status_code == 200
    assert api.post("/v3/memories/", {"filters": {"user_id": "u_alice"}}, "application/json").status_code == 200
    assert api.get("/v1/memories/00000000-0000-4000-8000-000000000000/").status_code == 404
    return Membership.objects.select_related("tenant", "user")


def test_every_role_reaches_every_page_and_every_harmless_action_leaves_it_true(demo, new_page):
    acme_admin = demo.get(user__username="acme-admin")
    problems, pages = [], 0
    for role in ("viewer", "support", "admin"):
        page = new_page()
        crawl = Crawl(page, role)
        sign_in(page, f"acme-{role}", DEMO_PASSWORD)
        crawl.walk(page.url, "/t/acme/")
        # The counts the pages show are the store's.
        membership = demo.get(user__username=f"acme-{role}")
        for path in ("/t/acme/", "/t/acme/memories/"):
            page.goto(path)
            if page_total(page) != store_total(membership):
                crawl.problems.append(
                    f"{role} {path}: shows {page_total(page)} memories, the store has {store_total(membership)}"
                )
        problems += crawl.problems
        pages += crawl.pages
        assert "overview?" in crawl.seen and "memories?" in crawl.seen
        # Agents and Runs, their lists and one agent's and one run's page, for every role (at 1366 and 390 px)
        assert {"agents?", "runs?", "agent?agent_id", "run?run_id"} <= set(crawl.seen), sorted(crawl.seen)
        if role == "admin":
            kinds = {"app?", "jobs?", "members?", "api_keys?", "audit?", "app_offboard?", "requests?", "requests?key"}
            assert kinds <= set(crawl.seen), kinds - set(crawl.seen)
        if role == "viewer":
            # The audit page is open to the viewer too: it shows them their own actions only.
            assert not {"users?", "members?", "api_keys?", "jobs?", "requests?"} & set(crawl.seen)

    _, path = data_link_issue(scope=scope_for_membership(acme_admin), user_id="u_alice")
    page = new_page()
    crawl = Crawl(page, "enduser")
    page.goto(path)
    crawl.walk(page.url, "/your-data/")
    page.goto(path)
    body = page.locator("#results").inner_text()
    assert "session-" not in body and "ticket-" not in body, "run ids on the end-user page"
    assert not page.locator(".score").count(), "similarity scores on the end-user page"
    problems += crawl.problems
    pages += crawl.pages
    assert pages >= 20
    assert problems == [], "\n".join(problems)


@pytest.fixture
def throwaway(transactional_db, live_server, add):
    """A tenant nobody minds losing: one admin, two apps, three people's memories."""
    tenant = TenantFactory(name="Throwaway", slug="throwaway")
    AppFactory(tenant=tenant, app_id="doomed_app", is_default=True)
    AppFactory(tenant=tenant, app_id="spare_app")
    admin = MembershipFactory(user=UserFactory(username="throwaway-admin"), tenant=tenant, role="admin")
    MembershipFactory(user=UserFactory(username="throwaway-viewer"), tenant=tenant, role="viewer")

    def put(app_id, user_id, text):
        from memadmin.memory import services
        from tenants.entities import entities_touch

        scope = scope_for_membership(admin)
        entities_touch(
            scope=scope,
            records=services.memory_add(scope=scope, app_id=app_id, messages=text, user_id=user_id, agent_id="helper"),
        )

    for user_id, texts in {
        "ann": ["Ann likes tea", "Ann flies to Oslo in May", "Ann hates olives"],
        "ben": ["Ben runs marathons", "Ben is vegetarian"],
        "cy": ["Cy sleeps late"],
    }.items():
        for i, text in enumerate(texts):
            put("doomed_app" if i % 2 == 0 else "spare_app", user_id, text)
    return admin


def test_destructive_actions_on_a_throwaway_tenant_leave_every_count_true(throwaway, new_page):
    page = new_page()
    crawl = Crawl(page, "throwaway-admin")
    sign_in(page, "throwaway-admin")

    page.goto("/t/throwaway/memories/")
    page.locator("#results tbody tr").first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#results tbody tr")).to_have_count(5)
    # The rows go first; the total comes with the recount that memories-changed triggers after the settle.
    expect(page.get_by_test_id("total")).to_have_text("5")
    crawl.check_fragments()
    assert page_total(page) == store_total(throwaway) == 5
    focused = page.evaluate("document.activeElement.tagName")
    assert focused != "BODY", "focus fell to <body> after the delete"

    page.goto("/t/throwaway/user/?user_id=ann")  # Ann's three (the newest, Cy's, went above)
    page.locator("#results tbody tr").first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#results tbody tr")).to_have_count(2)
    crawl.check_fragments()
    expect(page.locator(".page-head")).to_contain_text(re.compile(r"\b2 memories\b"))

    _, path = data_link_issue(scope=scope_for_membership(throwaway), user_id="ben")
    page.goto(path)
    page.locator("#results tbody tr").first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator("#results tbody tr")).to_have_count(1)
    crawl.check_fragments()
    # The head's count is swapped in after the row goes: wait for it rather than read it once.
    expect(page.locator(".page-head")).to_contain_text(re.compile(r"\b1 memory stored\b"))

    # Revoking a key once swapped a whole copy of the page into the row (the crawler found it too).
    page.goto("/t/throwaway/keys/")
    page.get_by_label("Name").first.fill("doomed key")
    page.get_by_role("button", name=re.compile("Create")).click()
    page.wait_for_load_state("load")
    page.goto("/t/throwaway/keys/")
    page.get_by_role("button", name=re.compile("^Revoke")).first.click()
    htmx_settled(page)
    crawl.check_fragments()
    assert crawl.problems == []


def test_destructive_forms_on_a_throwaway_tenant_answer_without_errors(throwaway, new_page):
    """Every destructive form of the dashboard, pressed for real: no 5xx, no page-in-a-page, no console
    error, no serious axe violation, and the store agrees with what the page then says."""
    page = new_page()
    crawl = Crawl(page, "throwaway-admin")
    sign_in(page, "throwaway-admin")

    page.goto("/t/throwaway/user/?user_id=ann")
    page.get_by_label("Type ann to confirm").fill("ann")
    page.get_by_role("button", name="Delete all memories of ann").click()
    expect(page.get_by_test_id("remaining")).to_have_text("0")
    crawl.check_fragments()
    crawl.axe("after erasing ann")
    assert (
        selectors.memory_counts(scope=scope_for_membership(throwaway), filters=filter_from_fields(user_id="ann")).total
        == 0
    )
    page.goto("/t/throwaway/user/?user_id=ann")
    expect(page.get_by_test_id("no-memories")).to_be_visible()
    expect(page.get_by_role("link", name="Export JSON")).to_have_count(0)

    page.goto("/t/throwaway/members/")
    for button in page.locator("form button[type=submit]:visible").all()[:3]:
        if button.is_visible():
            button.click()
            page.wait_for_load_state("load")
            crawl.check_fragments()
    crawl.visit("/t/throwaway/members/")

    _, path = data_link_issue(scope=scope_for_membership(throwaway), user_id="cy")
    person = new_page()
    crawl_person = Crawl(person, "throwaway-enduser")
    person.goto(path)
    person.get_by_label("I understand that all my memories will be deleted permanently.").check()
    person.get_by_role("button", name="Delete all my memories").click()
    person.wait_for_load_state("load")
    crawl_person.axe("end user after deleting everything")
    assert (
        selectors.memory_counts(scope=scope_for_membership(throwaway), filters=filter_from_fields(user_id="cy")).total
        == 0
    )
    assert crawl.problems + crawl_person.problems == []


def test_an_admin_offboards_an_app_by_clicks_only_from_the_overview_to_the_receipt(throwaway, new_page):
    page = new_page()
    crawl = Crawl(page, "throwaway-admin")
    sign_in(page, "throwaway-admin")
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("link", name="doomed_app", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("doomed_app"))).to_be_visible()
    page.get_by_role("link", name="Offboard…").click()
    page.get_by_label("Type doomed_app to confirm").fill("doomed_app")
    page.get_by_role("button", name="Offboard doomed_app").click()
    expect(page.get_by_test_id("job-state")).to_be_visible()
    job = Job.objects.get(kind=Job.Kind.OFFBOARD_APP, app__app_id="doomed_app")
    assert run_job(job.pk) == "succeeded"  # what the worker does; the page polls for it
    expect(page.get_by_test_id("job-state")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator("#job-progress")).to_contain_text("Remaining 0")
    crawl.photograph("offboard-receipt")
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("link", name="doomed_app", exact=True).click()
    expect(page.get_by_test_id("tombstone")).to_be_visible()
    expect(page.get_by_test_id("remaining")).to_have_text("0")
    crawl.axe("tombstone")
    assert crawl.problems == []
