"""Recording what the access matrices ask, to prove a rewrite of them dropped no case.

With ``MEMADMIN_RECORD_CASES=<dir>`` every request a test client sends is written (one JSON line) to
``<dir>/<pid>.jsonl`` as a case: who asked (a staff username, an API key's name, a your-data link's user,
nobody), the method, the route with its object ids replaced by their parameter names (so two runs with different
ids compare), the tenant it aimed at, and the status it got, which the test then asserted (or checked against a
rule such as "never 5xx, never another tenant's data").

    python -m tests.support.cases before/ after/   # every case of before/ is in after/, or it lists the missing
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ENV = "MEMADMIN_RECORD_CASES"
# Parameters whose values are object ids (random per run): recorded by name. The others (tenant slugs, app ids,
# entity types and names) are recorded as they are when they look like ordinary ids, else as {hostile}.
ID_PARAMETERS = {
    "memory_id",
    "token",
    "link_id",
    "job_id",
    "member_id",
    "invitation_id",
    "prefix",
    "webhook_id",
    "event_id",
}
PLAIN = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


def _principal(request: dict, response) -> str:
    authorization = request.get("HTTP_AUTHORIZATION") or ""
    if authorization:
        from tenants.models import TenantAPIKey

        prefix = authorization.removeprefix("Token ").split(".", 1)[0]
        names = list(TenantAPIKey.objects.filter(prefix=prefix).values_list("name", flat=True)[:1])
        return f"key:{names[0]}" if names else "key:unknown"
    user = getattr(getattr(response, "wsgi_request", None), "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.get_username()}"
    path = request.get("PATH_INFO", "")
    if path.startswith("/your-data/"):
        return "link"
    return "anonymous"


def _route(path: str) -> tuple[str, str]:
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return "(no route)", ""
    kwargs = {}
    for name, value in match.kwargs.items():
        if name in ID_PARAMETERS:
            kwargs[name] = "{" + name + "}"
        else:
            kwargs[name] = value if isinstance(value, str) and PLAIN.match(value) else "{hostile}"
    shown = ",".join(f"{k}={v}" for k, v in sorted(kwargs.items()))
    return f"{match.url_name}({shown})", str(kwargs.get("tenant_slug") or kwargs.get("project_id") or "")


def record(request: dict, response) -> None:
    directory = os.environ.get(ENV)
    if not directory:
        return
    route, tenant = _route(request.get("PATH_INFO", ""))
    tenant = tenant or request.get("HTTP_X_MEMADMIN_TENANT", "")
    case = {
        "who": _principal(request, response),
        "method": request.get("REQUEST_METHOD", "GET"),
        "route": route,
        "tenant": tenant,
        "status": response.status_code,
    }
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(Path(directory) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(case, sort_keys=True) + "\n")


def load(directory: str) -> set[tuple]:
    cases = set()
    for path in Path(directory).glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            c = json.loads(line)
            cases.add((c["who"], c["method"], c["route"], c["tenant"], c["status"]))
    return cases


def main(before: str, after: str) -> int:
    old, new = load(before), load(after)
    missing = sorted(old - new)
    print(
        f"cases before: {len(old)}; after: {len(new)}; before but not after: {len(missing)}; "
        f"after only: {len(new - old)}"
    )
    for case in missing:
        print("MISSING", *case)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
