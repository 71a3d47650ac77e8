"""Every public method of mem0.MemoryClient and mem0.AsyncMemoryClient (and of their .project), called through
the official client against a live server, gets the answer the method table of docs/api.md documents.

The list of methods is read from the installed client with inspect: a method a new mem0ai release adds fails
test_every_public_method_has_a_documented_answer until it is given an answer here (and in the docs/api.md table).
No call may end in an unexplained 404 ("No such API endpoint.") or a 500.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from mem0 import AsyncMemoryClient, MemoryClient
from mem0.client.project import AsyncProject, Project
from mem0.client.types import DeleteAllMemoryOptions
from mem0.exceptions import AuthenticationError, MemoryError, MemoryNotFoundError, ValidationError

from tenants.models import Tenant
from tests.concurrency import run_coroutine
from tests.support.stores import STORE_KINDS

pytestmark = pytest.mark.django_db(transaction=True)

USER = "u_interop"
UNKNOWN_ENDPOINT = "No such API endpoint."


@dataclass(frozen=True)
class Answer:
    raises: type[BaseException] | None = None  # the exception the client must raise (a mem0 one, or a local one)
    says: str = ""  # ... whose message holds this text
    check: Callable[[Any, Any], None] | None = None  # for a call that succeeds: (result, context)
    webhooks: bool = False


def ok(check: Callable[[Any, Any], Any]) -> Answer:
    def verify(result, x):
        assert check(result, x), result

    return Answer(check=verify)


def refused(method: str) -> Answer:
    return Answer(raises=ValidationError, says=f"{method}: not supported by memadmin: ")


def members(method: str) -> Answer:
    return Answer(raises=AuthenticationError, says=f"project.{method}: API keys never read or change the members")


WEBHOOKS = Answer(webhooks=True)


def _instructions_stored(result, x) -> bool:
    return result["custom_instructions"] == Tenant.objects.get(slug="acme").custom_instructions == "Keep diets."


def _gone(result, x) -> bool:
    return (
        result["message"] == "Entity deleted successfully." and x.seed.get_all(filters={"user_id": USER})["count"] == 0
    )


def _kept(x) -> bool:
    return x.seed.get_all(filters={"user_id": USER})["count"] == 1


@dataclass(frozen=True)
class Case:
    call: Callable[[Any, Any], Any]  # (client, context) -> result or coroutine
    answer: Answer
    after: Callable[[Any], bool] | None = field(default=None)  # what must hold afterwards


# One entry per public method: how the test calls it, and the answer docs/api.md's table documents.
CASES: dict[str, Case] = {
    "add": Case(
        lambda c, x: c.add("I like green tea.", user_id=USER, app_id="concierge_app"),
        ok(lambda r, x: r["results"][0]["user_id"] == USER and r["results"][0]["event"] == "ADD"),
    ),
    "get": Case(lambda c, x: c.get(x.memory_id), ok(lambda r, x: r["id"] == x.memory_id)),
    "get_all": Case(lambda c, x: c.get_all(filters={"user_id": USER}), ok(lambda r, x: r["count"] == 1)),
    "search": Case(
        lambda c, x: c.search("coffee", filters={"user_id": USER}),
        ok(lambda r, x: r["results"][0]["id"] == x.memory_id),
    ),
    "update": Case(
        lambda c, x: c.update(x.memory_id, text="I drink espresso."),
        ok(lambda r, x: r["memory"] == "I drink espresso."),
    ),
    "delete": Case(lambda c, x: c.delete(x.memory_id), ok(lambda r, x: r["deleted"] == 1 and r["remaining"] == 0)),
    # DeleteAllMemoryOptions(filters=...) travels as the Python repr of the dict in the query string.
    "delete_all": Case(
        lambda c, x: c.delete_all(
            DeleteAllMemoryOptions(filters={"AND": [{"user_id": USER}, {"app_id": "concierge_app"}]})
        ),
        ok(lambda r, x: r["deleted"] == 1 and r["remaining"] == 0),
    ),
    "history": Case(lambda c, x: c.history(x.memory_id), ok(lambda r, x: r[0]["memory_id"] == x.memory_id)),
    "users": Case(
        lambda c, x: c.users(),
        ok(lambda r, x: {"id": f"user:{USER}", "name": USER, "type": "user", "total_memories": 1} in r["results"]),
    ),
    "delete_users": Case(lambda c, x: c.delete_users(user_id=USER), ok(_gone)),
    # reset() deletes every entity the key can see, apps first: the first app entity is refused, nothing goes.
    "reset": Case(lambda c, x: c.reset(), Answer(raises=ValidationError, says="offboard the app instead"), after=_kept),
    "batch_update": Case(
        lambda c, x: c.batch_update([{"memory_id": x.memory_id, "text": "Tea, no sugar."}]),
        ok(lambda r, x: r["updated"] == 1),
    ),
    "batch_delete": Case(lambda c, x: c.batch_delete([{"memory_id": x.memory_id}]), ok(lambda r, x: r["deleted"] == 1)),
    "create_memory_export": Case(
        lambda c, x: c.create_memory_export("{}", filters={"user_id": USER}),
        ok(lambda r, x: r["status"] == "completed" and r["id"]),
    ),
    "get_memory_export": Case(
        lambda c, x: c.get_memory_export(filters={"user_id": USER}),
        ok(lambda r, x: r["count"] == 1 and r["results"][0]["id"] == x.memory_id),
    ),
    "get_summary": Case(lambda c, x: c.get_summary(filters={"user_id": USER}), refused("get_summary")),
    "feedback": Case(lambda c, x: c.feedback(x.memory_id, "POSITIVE"), refused("feedback")),
    "get_profile": Case(lambda c, x: c.get_profile(USER), refused("get_profile")),
    "generate_profile": Case(lambda c, x: c.generate_profile(USER), refused("generate_profile")),
    "get_profile_settings": Case(lambda c, x: c.get_profile_settings(), refused("get_profile_settings")),
    "update_profile_settings": Case(
        lambda c, x: c.update_profile_settings(enabled=True), refused("update_profile_settings")
    ),
    "sample_profiles": Case(lambda c, x: c.sample_profiles(limit=2), refused("sample_profiles")),
    "get_profile_job": Case(lambda c, x: c.get_profile_job("job-1"), refused("get_profile_job")),
    "get_project": Case(lambda c, x: c.get_project(), ok(lambda r, x: r["project_id"] == "acme")),
    "update_project": Case(lambda c, x: c.update_project(custom_instructions="Keep diets."), ok(_instructions_stored)),
    "chat": Case(lambda c, x: c.chat(), Answer(raises=NotImplementedError, says="not implemented")),
    "get_webhooks": Case(lambda c, x: c.get_webhooks(project_id=c.project_id), WEBHOOKS),
    "create_webhook": Case(
        lambda c, x: c.create_webhook(
            url="https://hooks.example.com/mem0", name="hook", project_id=c.project_id, event_types=["memory_add"]
        ),
        WEBHOOKS,
    ),
    "update_webhook": Case(lambda c, x: c.update_webhook(webhook_id=1, name="renamed"), WEBHOOKS),
    "delete_webhook": Case(lambda c, x: c.delete_webhook(webhook_id=1), WEBHOOKS),
    "project.get": Case(
        lambda c, x: c.project.get(fields=["custom_instructions", "apps"]),
        ok(lambda r, x: r == {"custom_instructions": None, "apps": ["concierge_app", "sports_portal"]}),
    ),
    "project.update": Case(lambda c, x: c.project.update(custom_instructions="Keep diets."), ok(_instructions_stored)),
    "project.create": Case(lambda c, x: c.project.create(name="another"), refused("project.create")),
    "project.delete": Case(lambda c, x: c.project.delete(), refused("project.delete"), after=_kept),
    "project.get_members": Case(lambda c, x: c.project.get_members(), members("get_members")),
    "project.add_member": Case(
        lambda c, x: c.project.add_member("new@example.com", role="OWNER"), members("add_member")
    ),
    "project.update_member": Case(
        lambda c, x: c.project.update_member("acme-viewer@example.com", role="OWNER"), members("update_member")
    ),
    "project.remove_member": Case(
        lambda c, x: c.project.remove_member("acme-viewer@example.com"), members("remove_member")
    ),
}


def public_methods(cls) -> set[str]:
    return {name for name, value in inspect.getmembers(cls) if not name.startswith("_") and callable(value)}


def client_methods(client_cls, project_cls) -> set[str]:
    return public_methods(client_cls) | {f"project.{name}" for name in public_methods(project_cls)}


def test_every_public_method_has_a_documented_answer():
    for client_cls, project_cls in ((MemoryClient, Project), (AsyncMemoryClient, AsyncProject)):
        assert client_methods(client_cls, project_cls) == set(CASES), client_cls.__name__


def test_the_api_docs_table_lists_every_method():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text()
    section = doc[doc.index("## Every client method") :]
    section = section[: section.index("\n## ")]
    listed = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            listed |= set(re.findall(r"`([a-z_.]+)`", row.split(" | ")[0]))
    assert listed == set(CASES), (set(CASES) - listed, listed - set(CASES))


def _verify(case: Case, name: str, outcome, error: BaseException | None, x) -> None:
    answer = case.answer
    if answer.webhooks:  # their payloads and answers: tests/tenants/api/test_webhooks.py; here: routed, no 500
        assert not (isinstance(error, MemoryNotFoundError) and UNKNOWN_ENDPOINT in str(error)), (name, error)
        assert error is None or (isinstance(error, MemoryError) and not str(error).startswith("Internal")), error
        return
    if answer.raises is None:
        assert error is None, (name, error)
        answer.check(outcome, x)
    else:
        assert isinstance(error, answer.raises), (name, type(error), error)
        assert answer.says.lower() in str(error).lower(), (name, str(error))
    if case.after is not None:
        assert case.after(x), name


def _context(live_world, live_server):
    seed = MemoryClient(api_key=live_world.acme_key, host=live_server.url)
    added = seed.add(
        "I drink coffee every morning.", user_id=USER, agent_id="barista", run_id="r1", app_id="concierge_app"
    )["results"]
    return SimpleNamespace(seed=seed, memory_id=added[0]["id"])


# The methods that read or write memories run again with the app on a second store (tests/support/stores.py):
# each must reach the store the app lives on, and leave nothing on the default one.
MEMORY_METHODS = {
    "add",
    "get",
    "get_all",
    "search",
    "update",
    "delete",
    "delete_all",
    "history",
    "users",
    "delete_users",
    "batch_update",
    "batch_delete",
    "create_memory_export",
    "get_memory_export",
}
SYNC_RUNS = [
    (name, kind) for name in sorted(CASES) for kind in STORE_KINDS if kind == "default" or name in MEMORY_METHODS
]


@pytest.mark.parametrize("name, store_kind", SYNC_RUNS)
def test_sync_client(live_world, live_server, name):
    x = _context(live_world, live_server)
    client = MemoryClient(api_key=live_world.acme_key, host=live_server.url)
    outcome = error = None
    try:
        outcome = CASES[name].call(client, x)
    except Exception as exc:  # noqa: BLE001 - the answer decides which exception is right
        error = exc
    try:
        _verify(CASES[name], name, outcome, error, x)
    finally:
        client.client.close()
        x.seed.client.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_async_client(live_world, live_server, name):
    x = _context(live_world, live_server)

    async def run():
        async with AsyncMemoryClient(api_key=live_world.acme_key, host=live_server.url) as client:
            try:
                result = CASES[name].call(client, x)
                return (await result if inspect.isawaitable(result) else result), None
            except Exception as exc:  # noqa: BLE001 - the answer decides which exception is right
                return None, exc

    outcome, error = run_coroutine(run())
    try:
        _verify(CASES[name], name, outcome, error, x)
    finally:
        x.seed.client.close()
