"""Running the tutorials our users come from (tests/fixtures/seeds/, copies of shared/seeds/) as they are written.

A seed's code is kept here as the tutorial prints it; ``verbatim`` proves it: every line of a block is a line of
the seed, in the seed's order (indentation aside, since the tutorial indents some blocks inside its prose), except
the lines a block names as replaced, each with the only change the tests may make (the client gains ``host=`` and a
real key; Mem0 OSS gains the bundled embedder, the test server and ``infer=False`` instead of OpenAI).
"""

from __future__ import annotations

import ast
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "seeds"
# Where the workplace keeps the originals, beside the checkout (absent in a clone made elsewhere).
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "seeds"


def seed_text(name: str) -> str:
    return (SEEDS / name).read_text()


def verbatim(seed: str, block: str, replaced: dict[str, str] | None = None) -> str:
    """``block`` with each replaced line swapped in, after checking that every other line is the seed's own."""
    replaced = replaced or {}
    lines = [line.strip() for line in seed_text(seed).splitlines()]
    position = 0
    out = []
    for line in block.strip("\n").splitlines():
        wanted = line.strip()
        if not wanted:
            out.append(line)
            continue
        try:
            position = lines.index(wanted, position) + 1
        except ValueError:
            raise AssertionError(f"not a line of {seed} (or out of its order): {wanted!r}") from None
        if wanted in replaced:
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + replaced[wanted]
        out.append(line)
    unused = set(replaced) - {line.strip() for line in block.splitlines()}
    assert not unused, f"replacements for lines the block does not have: {unused}"
    return "\n".join(out)


def run_statements(code: str, namespace: dict) -> list[tuple[str, str]]:
    """Run ``code`` one top-level statement at a time, as a reader pasting the tutorial into a REPL would.

    A statement that mem0ai itself refuses before any request is sent (its ValueError for top-level entity ids,
    which mem0ai 2.2 moved into ``filters``) is noted and the run goes on, as do statements that only fail because
    they use a name such a refused statement would have defined. Anything else raises: memadmin must answer it."""
    refused: list[tuple[str, str]] = []
    undefined: set[str] = set()
    for node in ast.parse(code).body:
        source = ast.get_source_segment(code, node)
        try:
            exec(compile(ast.Module([node], []), "<seed>", "exec"), namespace)  # noqa: S102 - the seed's own code
        except ValueError as exc:
            if "Top-level entity parameters" not in str(exc):
                raise
            refused.append((source.splitlines()[0], str(exc)))
            undefined |= _targets(node)
        except NameError as exc:
            if exc.name not in undefined:
                raise
            refused.append((source.splitlines()[0], f"uses {exc.name}, which a refused line would have set"))
            undefined |= _targets(node)
    return refused


def _targets(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
    return names
