"""The layering rules (README.md "Architecture on one screen"), read from the code: the memory service imports
nothing from tenants, no import cycle exists among the project's modules (counting imports made inside
functions), no module uses another's private names, every FT.* command is built in the index layer, and every
streamed download goes through the one ending that makes a failure visible, and templates ask named flags rather
than compare capability or status strings."""

import ast
import importlib
import re
from pathlib import Path

from memadmin.memory.capabilities import ALL

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("memadmin", "tenants"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (top level or inside a function)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_the_memory_service_imports_nothing_from_tenants():
    graph = _graph()
    upward = {
        (m, t)
        for m, targets in graph.items()
        for t in targets
        if m.startswith("memadmin.memory") and t.startswith("tenants")
    }
    assert upward == set()


# What tenants may import of the memory service (DESIGN.md "Layout"): filters and ids are value types (the
# filter tree a view builds, the id checks a form runs); collections is the front door for whole collections,
# stores and index health; receipts reads and verifies the signed erasure receipts the service writes. Everything
# else (store, index, bulk, consistency, history, embedding, embedded, moves, imports, audit, status, purge,
# guarded) is an engine room.
FRONT_DOOR = {
    "scope",
    "capabilities",
    "models",
    "errors",
    "records",
    "selectors",
    "services",
    "filters",
    "ids",
    "collections",
    "receipts",
}


def past_the_front_door(source: str) -> list[str]:
    """Imports in ``source`` (anywhere, functions included) that reach the memory service other than through
    FRONT_DOOR, as ``line: module``; importing the package itself counts, since it hands out every module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            package = node.module in ("memadmin", "memadmin.memory")
            named = [f"{node.module}.{alias.name}" for alias in node.names] if package else [node.module]
        else:
            continue
        for name in named:
            parts = name.split(".")
            if parts[:2] == ["memadmin", "memory"] and (len(parts) == 2 or parts[2] not in FRONT_DOOR):
                found.append(f"{node.lineno}: {name}")
    return found


def test_tenants_reaches_the_memory_service_only_through_its_front_door():
    found = [
        f"{name}:{line}"
        for name, path in _modules().items()
        if name.startswith("tenants")
        for line in past_the_front_door(path.read_text())
    ]
    assert found == []


def test_the_front_door_check_catches_every_way_in():
    source = """
from memadmin.memory import selectors, store
from memadmin.memory.scope import Scope
import memadmin.memory.index as idx
from memadmin import memory, settings


def offboard():
    from memadmin.memory.bulk import app_drop
    import memadmin.memory.collections


class Job:
    def run(self):
        from memadmin.memory import *
"""
    assert past_the_front_door(source) == [
        "2: memadmin.memory.store",
        "4: memadmin.memory.index",
        "5: memadmin.memory",
        "9: memadmin.memory.bulk",
        "15: memadmin.memory.*",
    ]
    assert past_the_front_door("from memadmin.memory.collections import app_health\nimport tenants.models\n") == []


def test_no_import_cycle_even_inside_functions():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node, path):
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _module_aliases(tree: ast.AST, modules: dict[str, Path]) -> dict[str, str]:
    """Local names bound to a project module (``from memadmin.memory import store``, ``import x.y as z``)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
    return aliases


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    modules = _modules()
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(tree, modules)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in modules and node.module != name:
                found += [f"{name}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id] != name
                and _private(node.attr)
            ):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    assert found == []


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    return {id(n.body[0].value) for n in nodes if n.body and isinstance(n.body[0], ast.Expr)}


def _command_stat_names(tree: ast.AST) -> set[int]:
    """The monitor's _GUARDED tuple names commands to read from INFO commandstats; it sends none of them."""
    return {
        id(c)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "_GUARDED" for t in n.targets)
        for c in ast.walk(n.value)
    }


INDEX_LAYER = {"memadmin.memory.index", "memadmin.memory.index_queries"}  # creating and health; queries


def test_every_ft_command_is_built_in_the_index_layer():
    command = re.compile(r"FT\.[A-Z_]+", re.IGNORECASE)  # a command name as an argument, not prose that names one
    found = []
    for name, path in _modules().items():
        if name in INDEX_LAYER:
            continue
        tree = ast.parse(path.read_text())
        skipped = _docstrings(tree) | _command_stat_names(tree)
        found += [
            f"{name}: {node.value}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skipped
            and command.fullmatch(node.value)
        ]
    assert found == []


def _calls(tree: ast.AST, function: str) -> list[ast.Call]:
    def named(node) -> str:
        return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")

    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and named(n.func) == function]


def test_every_streamed_response_ends_visibly_and_every_csv_goes_through_the_one_writer():
    """A streamed download that fails midway must end visibly (logged, audited); a CSV cell must never be a
    formula. Both hold by construction only if nobody streams or writes CSV around the shared pieces."""
    streams, writers = [], []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "StreamingHttpResponse"):
            body = (
                call.args[0]
                if call.args
                else next((k.value for k in call.keywords if k.arg == "streaming_content"), None)
            )
            if not (isinstance(body, ast.Call) and getattr(body.func, "id", "") == "ending_visibly"):
                streams.append(f"{name}:{call.lineno}")
        if name != "tenants.export_formats":
            writers += [f"{name}:{call.lineno}" for call in _calls(tree, "writer") + _calls(tree, "DictWriter")]
    assert streams == [] and writers == []


# The only module-level containers of store.py: caches keyed by the store, never a table of where a collection
# lives (which the engines would read back: an app whose scope this process never built got the wrong store).
STORE_CACHES = {"_clients": "store name -> connection pool", "_memories": "(store, collection) -> Mem0 Memory"}
_CONTAINERS = (ast.Dict, ast.Set, ast.List, ast.DictComp, ast.SetComp, ast.ListComp)
_FACTORIES = {"dict", "set", "list", "defaultdict", "OrderedDict", "WeakValueDictionary"}


def routing_breaches(source: str) -> list[str]:
    """Module-level mutable containers beyond STORE_CACHES, and any name that routes a collection to a store."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and re.search(r"route|store_of", node.name, re.I):
            found.append(f"{node.lineno}: {node.name}")
        targets = node.targets if isinstance(node, ast.Assign) else []
        targets = [node.target] if isinstance(node, ast.AnnAssign) else targets
        value = getattr(node, "value", None)
        called = getattr(value, "func", None)
        container = isinstance(value, _CONTAINERS) or getattr(called, "id", getattr(called, "attr", "")) in _FACTORIES
        for target in targets:
            name = getattr(target, "id", "")
            if re.search(r"route", name, re.I) or (container and name not in STORE_CACHES):
                found.append(f"{node.lineno}: {name}")
    return found


def test_store_keeps_no_routing_table():
    """Where an app lives is passed down (AppRef.place), never set aside in the store module as a side effect."""
    assert routing_breaches((ROOT / "memadmin" / "memory" / "store.py").read_text()) == []


def test_the_routing_check_catches_a_table_and_its_functions():
    source = """
_clients: dict[str, object] = {}
_routes: dict[str, str] = {}
_where = dict()


def route(collection, name):
    _routes[collection] = name


def store_of(collection):
    return _routes[collection]
"""
    assert routing_breaches(source) == ["3: _routes", "4: _where", "7: route", "11: store_of"]


MAX_LINES = 450


def test_no_module_is_over_450_lines():
    """A module past this has more than one job: split it along its seams (one file per job kind, one API
    module per resource, the index layer's admin and queries)."""
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_tests_share_helpers_through_tests_support_never_a_conftest():
    """A conftest is pytest's, for the fixtures of its folder; a helper two folders need lives in tests/support/."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*from tests(\.\w+)*\.conftest import|\s*import tests(\.\w+)*\.conftest", line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []


# Templates ask named flags (can.offboard, app.is_offboarded, job.is_running) and never restate a rule by
# comparing a capability or a status string: the rules live in memadmin/memory/capabilities.py and the models.
_TAG = re.compile(r"\{%(.*?)%\}", re.S)
_STRING = r"""(?:"[^"]*"|'[^']*')"""
_STATUS_COMPARE = re.compile(  # app.status == "x", job.state in (...), and "x" == job.state
    rf"""\.(?:status|state)\s*(?:==|!=|(?:not\s+)?in\b)|{_STRING}\s*(?:==|!=)\s*[\w.]+\.(?:status|state)\b"""
)
_CAN = re.compile(r"\bcan\.(\w+)")


def template_rule_breaches(source: str) -> list[str]:
    """The template tags in ``source`` that compare a capability or a status string, or ask ``can`` for a
    capability that does not exist (a typo would read as "not allowed")."""
    capability_test = re.compile(rf"""["']({"|".join(sorted(ALL))})["']\s+(?:not\s+)?in\b|\ballowed\b""")
    found = []
    for tag in _TAG.findall(source):
        if capability_test.search(tag) or _STATUS_COMPARE.search(tag):
            found.append(tag.strip())
        found += [f"unknown capability can.{name}" for name in _CAN.findall(tag) if name not in ALL]
    return found


def test_templates_ask_named_flags_not_capability_or_status_strings():
    found = {
        str(path.relative_to(ROOT)): breaches
        for path in (ROOT / "templates").rglob("*.html")
        if (breaches := template_rule_breaches(path.read_text()))
    }
    assert found == {}


def test_the_template_check_catches_string_comparisons():
    source = """
{% if 'offboard' in request.allowed %}a{% endif %}
{% if "read_audit" not in perms %}b{% endif %}
{% if x and 'run_jobs' in request.allowed %}c{% endif %}
{% if app.status == "offboarded" %}d{% endif %}
{% if job.state != 'running' %}e{% endif %}
{% if job.state in active %}f{% endif %}
{% if "failed" == job.state %}g{% endif %}
{% if can.ofboard %}h{% endif %}
{% if can.offboard and app.is_offboarded and job.is_running and kind == "run" %}fine{% endif %}
{% for value in values %}{% if value in chosen %}fine{% endif %}{% endfor %}
"""
    assert template_rule_breaches(source) == [
        "if 'offboard' in request.allowed",
        'if "read_audit" not in perms',
        "if x and 'run_jobs' in request.allowed",
        'if app.status == "offboarded"',
        "if job.state != 'running'",
        "if job.state in active",
        'if "failed" == job.state',
        "unknown capability can.ofboard",
    ]


def test_every_module_imports(monkeypatch):
    """A module no test happens to import still loads: an import of a name that moved elsewhere fails here, not
    in production (memadmin/asgi.py once imported warm_up from a module that no longer had it)."""
    monkeypatch.setenv("MEMADMIN_PRELOAD_EMBEDDER", "0")
    names = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in ("memadmin", "tenants")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    assert len(names) > 100, names
    failed = {}
    for name in names:
        try:
            importlib.import_module(name.removesuffix(".__init__"))
        except Exception as exc:  # every failure, with its module, in one report
            failed[name] = repr(exc)
    assert not failed, failed


def test_formatting_is_left_to_the_formatter():
    """`ruff format --check` runs in the test command; a `# fmt: skip` opts a line out, so each is rare and says
    why (at most 20 in the project)."""
    markers = [
        (path, line)
        for package in ("memadmin", "tenants", "tests", "bench")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "test_architecture.py"
        for line in path.read_text().splitlines()
        if re.search(r"#\s*fmt:\s*skip", line)
    ]
    assert len(markers) <= 20, len(markers)
    assert all(re.search(r"fmt: skip\S*\s*[(:-]\s*\w", line) for _, line in markers), markers
