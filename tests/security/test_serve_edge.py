"""Hostile requests against a real ``manage.py serve`` stack (gunicorn with memadmin's configuration): what
gunicorn would have refused itself before Django, with a plain-text 400, reaches memadmin and gets the API's one
JSON error shape; a chunked body is read like any other."""

import http.client
import json
import socket

import pytest

from tenants.models import TenantAPIKey
from tests.factories import TenantFactory
from tests.memadmin.test_serve import gunicorn  # noqa: F401  (the fixture that starts the server)


def raw(server, data: bytes) -> tuple[int, dict, bytes]:
    """One request as exactly these bytes, on its own connection; the answer's status, headers and body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def json_error(answer, status: int) -> str:
    code, headers, body = answer
    assert code == status, (code, body[:300])
    assert headers["Content-Type"].startswith("application/json"), (code, headers, body[:300])
    payload = json.loads(body)
    assert set(payload) == {"error", "detail"} and payload["detail"] == payload["error"]["message"], payload
    return payload["detail"]


def get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def server(gunicorn):  # noqa: F811
    tenant = TenantFactory(slug="acme")
    _row, key = TenantAPIKey.objects.create_key(name="crm", tenant=tenant)
    server = gunicorn(workers=1)
    server.key = key
    return server


def test_a_chunked_add_is_stored_once_however_often_it_is_retried(server):
    body = json.dumps({"messages": "Alice sends her bodies in chunks", "user_id": "alice", "infer": False}).encode()
    auth = {"Authorization": f"Token {server.key}"}
    answers = []
    for _attempt in range(2):  # a retry, on a new connection, as a client would after losing the first answer
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.request(
            "POST",
            "/v3/memories/add/",
            body=iter([body[:10], body[10:]]),
            encode_chunked=True,
            headers={**auth, "Content-Type": "application/json", "Idempotency-Key": "add-1"},
        )
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Idempotent-Replayed"), json.loads(response.read())))
        conn.close()
    (status, replayed, answer), again = answers
    assert status == 200 and replayed is None, answer
    assert [m["memory"] for m in answer["results"]] == ["Alice sends her bodies in chunks"]
    assert again == (200, "true", answer)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request(
        "POST",
        "/v3/memories/",
        body=json.dumps({"filters": {"user_id": "alice"}}),
        headers={**auth, "Content-Type": "application/json"},
    )
    listed = json.loads(conn.getresponse().read())
    conn.close()
    assert [m["memory"] for m in listed["results"]] == ["Alice sends her bodies in chunks"]


def test_a_chunked_body_over_the_limit_is_a_413(server):
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // len(chunk) + 1))
    head = (
        "POST /v3/memories/add/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked"
        f"\r\nContent-Type: application/json\r\nAuthorization: Token {server.key}\r\n\r\n"
    )
    assert "over" in json_error(raw(server, head.encode() + chunks + b"0\r\n\r\n"), 413)


def test_what_gunicorn_refused_is_a_json_error(server):
    auth = f"Authorization: Token {server.key}"
    # Longer than gunicorn's default request line (4094): Django's answer (the id is too long); longer than
    # memadmin's limit and gunicorn's largest (8190): a 414 from memadmin.
    delete = get("/v1/memories/?user_id=" + "a" * 5000, auth).replace(b"GET", b"DELETE", 1)
    assert "user_id" in json_error(raw(server, delete), 400)
    for size in (9000, 100_000):
        message = json_error(raw(server, get("/v1/entities/?user_id=" + "a" * size, auth)), 414)
        assert "URI is over" in message
    assert "header X-Big" in json_error(raw(server, get("/v1/ping/", auth, "X-Big: " + "b" * 9000)), 431)
    many = [f"X-H{n}: {n}" for n in range(150)]
    assert "header fields" in json_error(raw(server, get("/v1/ping/", auth, *many)), 431)
    # Bytes that are no UTF-8, escaped or not, in the path and in an id of the query string: not "deleted 0".
    delete = get("/v1/memories/?user_id=%ff", auth).replace(b"GET", b"DELETE", 1)
    assert "not valid UTF-8" in json_error(raw(server, delete), 400)
    assert "not valid UTF-8" in json_error(raw(server, get("/v1/memories/%ff/", auth)), 400)
    # Not HTTP at all, refused by gunicorn's parser before any application runs (docs/deploying.md says why they
    # stay refused), and what is over gunicorn's own limits: still the API's error shape.
    bad_length = get("/v1/ping/", auth, "Content-Length: abc")
    raw_bytes = get("/v1/memories/\xff/", auth).replace(b"\xc3\xbf", b"\xff")
    assert "CONTENT-LENGTH" in json_error(raw(server, bad_length), 400)
    assert "Invalid Request Line" in json_error(raw(server, raw_bytes), 400)
    assert json_error(raw(server, get("/v1/ping/?q=" + "a" * 2 * 1024 * 1024, auth)), 414)
    assert json_error(raw(server, get("/v1/ping/", auth, *[f"X-H{n}: {n}" for n in range(500)])), 431)
    # A healthy request still answers after all that.
    assert raw(server, get("/v1/ping/", auth))[0] == 200
