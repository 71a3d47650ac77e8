"""The documents stay true to the code: the README stays a front page, every environment variable the code reads
is on docs/configuration.md, every management command and each of its options is on docs/jobs.md, every relative
link and #anchor in README.md, docs/ and bench/README.md lands on a file and a heading, and every pointer from
the code to a document names a file and a section that exist."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *DOCS, ROOT / "bench" / "README.md"]
CODE_DIRS = ("memadmin", "tenants", "bench")
# Pages that the README and docs/security.md link to and that are written on other branches: until they land
# here a link to them is allowed to wait; once they exist, their links and anchors are checked like any other.
PAGES_TO_COME = {ROOT / "docs" / "erasure.md", ROOT / "docs" / "receipts.md"}
# Variables of the operating system, not of memadmin: read, never configured.
SYSTEM_VARIABLES = {"PATH", "HOME"}

ENV_READ = re.compile(
    r"""(?:env_[a-z]+\(\s*|os\.environ\.get\(\s*|os\.environ\[\s*|os\.getenv\(\s*|os\.environ\.setdefault\(\s*)"""
    r"""["']([A-Z][A-Z0-9_]*)["']"""
)
MEMADMIN_NAME = re.compile(r"""["'](MEMADMIN_[A-Z0-9_]+)["']""")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DOC_POINTER = re.compile(
    r"""(README(?:\.md)?|(?:bench/)?README\.md|docs/[\w-]+\.md)(?:'s)?(?:#([\w-]+)|,?\s*(?:section\s*)?"""
    r"""["“]([^"”\n]{2,80})["”])?"""
)


def _code_files() -> list[Path]:
    files = [ROOT / "manage.py", *sorted((ROOT / "tests").glob("*.py"))]
    for name in CODE_DIRS:
        files += sorted((ROOT / name).rglob("*.py"))
    return [f for f in files if f.name != "test_docs.py"]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a '# comment' in a shell block is no heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces become hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^#{1,6} +(.+?) *$", _prose(path.read_text()), re.M)]


def _anchors(path: Path) -> set[str]:
    anchors, seen = set(), {}
    for heading in _headings(path):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_the_readme_is_a_front_page_of_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= 300


def test_every_environment_variable_the_code_reads_is_on_the_configuration_page():
    names = set()
    for path in _code_files():
        text = path.read_text()
        names |= set(ENV_READ.findall(text)) | set(MEMADMIN_NAME.findall(text))
    names -= SYSTEM_VARIABLES
    assert {"SECRET_KEY", "MEMADMIN_DATA_DIR", "MEMADMIN_WEB_WORKERS", "MEMADMIN_TEST_DATABASE"} <= names  # it reads
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in page and f"`{name}=" not in page)
    assert not missing, f"not in docs/configuration.md: {missing}"


def _commands() -> dict[str, set[str]]:
    """Every management command of the project, with the --options its add_arguments declares."""
    commands = {}
    for path in sorted(ROOT.glob("*/management/commands/*.py")):
        if path.name.startswith("_"):
            continue
        options = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                options |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
        commands[path.stem] = options
    return commands


def test_every_management_command_and_option_is_on_the_jobs_page():
    commands = _commands()
    assert {"serve", "worker", "offboard", "import_mem0"} <= set(commands)
    rows = [line for line in (ROOT / "docs" / "jobs.md").read_text().splitlines() if line.startswith("| `python ")]
    for command, options in commands.items():
        row = next((r for r in rows if re.match(rf"\| `python manage\.py {command}[ `]", r)), None)
        assert row, f"manage.py {command} has no row in docs/jobs.md's command table"
        undocumented = sorted(option for option in options if option not in row)
        assert not undocumented, f"manage.py {command}: {undocumented} not in its docs/jobs.md row"


def test_every_relative_link_lands_on_a_file_and_a_heading():
    broken = []
    for document in DOCUMENTS:
        for target in LINK.findall(_prose(document.read_text())):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (document.parent / path_part).resolve() if path_part else document
            if path in PAGES_TO_COME and not path.exists():
                continue
            if not path.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and (path.suffix != ".md" or anchor not in _anchors(path)):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_anchor_rule_is_githubs():
    assert _slug("Where is …") == "where-is-"
    assert _slug("Ids (`user_id`, `agent_id`, `run_id`, `app_id`)") == "ids-user_id-agent_id-run_id-app_id"
    assert _slug("Kept found: `tests/security/`") == "kept-found-testssecurity"


def _pointers(text: str):
    for match in DOC_POINTER.finditer(text):
        yield match.group(1), match.group(2), match.group(3)


def test_every_pointer_from_the_code_to_a_document_names_a_file_and_section_that_exist():
    sources = _code_files() + sorted((ROOT / "templates").rglob("*.html")) + sorted((ROOT / "bin").glob("*"))
    sources += sorted((ROOT / ".ci").glob("*"))
    sources += [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_docs.py" and p not in sources]
    wrong = []
    for source in sources:
        for name, anchor, section in _pointers(source.read_text()):
            path = ROOT / ("README.md" if name in ("README", "README.md") else name)
            where = f"{source.relative_to(ROOT)}: {name}"
            if not path.exists():
                wrong.append(f"{where} (no such file)")
            elif anchor and anchor not in _anchors(path):
                wrong.append(f"{where}#{anchor} (no such heading)")
            elif section and not any(
                h.replace("`", "").lower().startswith(section.replace("`", "").lower()) for h in _headings(path)
            ):
                wrong.append(f'{where} "{section}" (no such heading)')
    assert not wrong, "\n".join(wrong)


def test_the_pointer_check_reads_the_forms_the_code_uses():
    found = list(_pointers('(README, "Search") docs/scaling.md "Scaling out" docs/api.md#rate-limit'))
    assert found == [
        ("README", None, "Search"),
        ("docs/scaling.md", None, "Scaling out"),
        ("docs/api.md", "rate-limit", None),
    ]
