"""The nodes of a filter tree and how a tree matches one memory in Python (filters.py parses and renders them).

``matches`` reads a dict of the memory's scope fields and timestamps (the fallback erasure's SCAN), plus its text
and metadata where a text or metadata condition is involved (the post-filter, memadmin/memory/post_filters.py).
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_OPS = ("contains", "icontains")


class Node:
    def matches(self, record: dict) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Everything(Node):
    def matches(self, record):
        return True


@dataclass(frozen=True)
class Nothing(Node):
    def matches(self, record):
        return False


@dataclass(frozen=True)
class Eq(Node):
    field: str
    value: str

    def matches(self, record):
        return record.get(self.field) == self.value


@dataclass(frozen=True)
class AnyValue(Node):
    """``*``: the field is present and not empty (Mem0's wildcard semantics)."""

    field: str

    def matches(self, record):
        return bool(record.get(self.field))


@dataclass(frozen=True)
class In(Node):
    field: str
    values: tuple[str, ...]

    def matches(self, record):
        return record.get(self.field) in self.values


@dataclass(frozen=True)
class Range(Node):
    field: str
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def matches(self, record):
        value = record.get(self.field)
        if value is None:
            return False
        return not (
            (self.gt is not None and value <= self.gt)
            or (self.gte is not None and value < self.gte)
            or (self.lt is not None and value >= self.lt)
            or (self.lte is not None and value > self.lte)
        )


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]

    def matches(self, record):
        return all(child.matches(record) for child in self.children)


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]

    def matches(self, record):
        return any(child.matches(record) for child in self.children)


@dataclass(frozen=True)
class Not(Node):
    """None of the child's matches (Mem0's ``NOT``; ``ne`` / ``nin`` on an id)."""

    child: Node

    def matches(self, record):
        return not self.child.matches(record)


# The two conditions below read the memory's text and metadata, which the index cannot answer (metadata is one
# TAG holding JSON; the text is stemmed, never matched as a substring). They are applied in Python to the
# scope's own candidates (memadmin/memory/post_filters.py), never rendered into a query.


@dataclass(frozen=True)
class Contains(Node):
    """The memory text holds ``value`` (``ignore_case``: icontains; ``keywords``: one such per word)."""

    value: str
    ignore_case: bool = False

    def matches(self, record):
        text = record.get("memory") or ""
        return self.value.casefold() in text.casefold() if self.ignore_case else self.value in text


@dataclass(frozen=True)
class Meta(Node):
    """One metadata key compared with ``op``; a memory without the key never matches (ne / nin included)."""

    key: str
    op: str
    value: object

    def matches(self, record):
        metadata = record.get("metadata")
        if not isinstance(metadata, dict) or self.key not in metadata:
            return False
        have = metadata[self.key]
        if self.op == "any":  # categories: the memory's list holds one of these
            return isinstance(have, list) and any(_same(h, v) for h in have for v in self.value)
        if self.op in ("eq", "ne"):
            return _same(have, self.value) == (self.op == "eq")
        if self.op in ("in", "nin"):
            return any(_same(have, v) for v in self.value) == (self.op == "in")
        if self.op in TEXT_OPS:
            if not isinstance(have, str):
                return False
            return self.value.casefold() in have.casefold() if self.op == "icontains" else self.value in have
        if isinstance(have, bool) or not isinstance(have, (int, float)) or not isinstance(self.value, (int, float)):
            return False
        return {"gt": have > self.value, "gte": have >= self.value, "lt": have < self.value, "lte": have <= self.value}[
            self.op
        ]


def _same(a, b) -> bool:
    # JSON's true is not 1: Python's True == 1 would let {"vip": 1} match {"vip": true}.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


POST_FILTERED = (Contains, Meta)
EVERYTHING = Everything()
NOTHING = Nothing()


def and_(*nodes: Node) -> Node:
    flat: list[Node] = []
    for node in nodes:
        if isinstance(node, Nothing):
            return NOTHING
        if isinstance(node, Everything):
            continue
        flat.extend(node.children if isinstance(node, And) else (node,))
    if not flat:
        return EVERYTHING
    return flat[0] if len(flat) == 1 else And(tuple(dict.fromkeys(flat)))


def or_(*nodes: Node) -> Node:
    flat: list[Node] = []
    for node in nodes:
        if isinstance(node, Everything):
            return EVERYTHING
        if isinstance(node, Nothing):
            continue
        flat.extend(node.children if isinstance(node, Or) else (node,))
    if not flat:
        return NOTHING
    return flat[0] if len(flat) == 1 else Or(tuple(dict.fromkeys(flat)))


def not_(node: Node) -> Node:
    if isinstance(node, Everything):
        return NOTHING
    if isinstance(node, Nothing):
        return EVERYTHING
    return node.child if isinstance(node, Not) else Not(node)


def needs_post_filter(node: Node) -> bool:
    """Whether the tree holds a text or metadata condition, which only Python can evaluate."""
    if isinstance(node, POST_FILTERED):
        return True
    if isinstance(node, (And, Or)):
        return any(needs_post_filter(child) for child in node.children)
    return isinstance(node, Not) and needs_post_filter(node.child)


def index_part(node: Node) -> Node:
    """What the index can answer of a tree: a superset of its matches (text and metadata conditions, and
    anything under them in a NOT, become "everything"), which the post-filter then narrows exactly."""
    if isinstance(node, POST_FILTERED):
        return EVERYTHING
    if isinstance(node, And):
        return and_(*(index_part(child) for child in node.children))
    if isinstance(node, Or):
        return or_(*(index_part(child) for child in node.children))
    if isinstance(node, Not) and needs_post_filter(node.child):
        return EVERYTHING
    return node
