"""project.update(custom_instructions=...) reaches the LLM that extracts facts on infer=true adds.

The LLM is a small local HTTP server speaking the OpenAI chat-completions protocol (memadmin's
MEMADMIN_LLM_PROVIDER=openai with MEMADMIN_LLM_BASE_URL): Mem0 and Valkey are the real ones; only the
language model, an outside service, stands in, and it records what it was asked."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memadmin.memory import store


class FakeLLM(BaseHTTPRequestHandler):
    asked: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeLLM.asked.append(body)
        facts = json.dumps({"memory": [{"text": "Eats no meat"}]})
        answer = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": facts}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeLLM.asked = []
    settings.MEMADMIN_LLM_PROVIDER = "openai"
    settings.MEMADMIN_LLM_MODEL = "gpt-4o-mini"
    settings.MEMADMIN_LLM_API_KEY = "test-key"
    settings.MEMADMIN_LLM_BASE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    store.reset()  # the cached Mem0 Memory holds its LLM client
    yield FakeLLM
    server.shutdown()
    store.reset()


def _prompt(request: dict) -> str:
    return "\n".join(m["content"] for m in request["messages"])


def test_the_tenants_instructions_reach_the_extraction_llm(world, api, llm):
    api.as_key(world.acme_key)
    updated = api.patch(
        "/api/v1/orgs/organizations/acme/projects/acme/",
        {"custom_instructions": "Record dietary facts only.", "org_id": "acme"},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    added = api.post(
        "/v3/memories/add/",
        {"messages": "I stopped eating meat last year.", "user_id": "u1", "infer": True},
        format="json",
    )
    assert added.status_code == 200, added.content
    assert [r["memory"] for r in added.json()["results"]] == ["Eats no meat"]
    assert len(llm.asked) == 1 and "Record dietary facts only." in _prompt(llm.asked[0])

    # Another tenant's adds do not get them; a cleared setting is gone.
    api.as_key(world.globex_key)
    api.post("/v3/memories/add/", {"messages": "I like rice.", "user_id": "u1", "infer": True}, format="json")
    assert "Record dietary facts only." not in _prompt(llm.asked[1])
    api.as_key(world.acme_key)
    api.patch("/api/v1/orgs/organizations/acme/projects/acme/", {"custom_instructions": None}, format="json")
    api.post("/v3/memories/add/", {"messages": "I like tofu.", "user_id": "u1", "infer": True}, format="json")
    assert "Record dietary facts only." not in _prompt(llm.asked[2])
