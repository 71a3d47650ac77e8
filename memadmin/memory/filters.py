"""Filter trees over the fields Mem0 stores, rendered to FT.SEARCH syntax.

A tree is built from caller input (``filter_from_fields`` for forms,
``filter_from_mem0`` for Mem0 Filters v2 JSON) and ANDed with the scope by the
selectors, so a caller can only narrow what the scope allows. ``app_id`` is not
a field of Mem0's schema: isolation between apps is physical (one collection per
app), so each app's tree is partially evaluated with its app_id known
(``for_app``) before it is rendered for that app's index.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from memadmin.memory.errors import ValidationError
from memadmin.memory.filter_nodes import (
    EVERYTHING,
    NOTHING,
    POST_FILTERED,
    TEXT_OPS,
    And,
    AnyValue,
    Contains,
    Eq,
    Everything,
    In,
    Meta,
    Node,
    Not,
    Nothing,
    Or,
    Range,
    and_,
    index_part,
    needs_post_filter,
    not_,
    or_,
)
from memadmin.memory.ids import ANY, clean_app_id, clean_id, escape_tag

__all__ = [  # the tree's nodes live in filter_nodes.py; callers name them from here
    "EVERYTHING",
    "NOTHING",
    "And",
    "AnyValue",
    "Contains",
    "Eq",
    "Everything",
    "In",
    "Meta",
    "Node",
    "Not",
    "Nothing",
    "Or",
    "Range",
    "and_",
    "index_part",
    "needs_post_filter",
    "not_",
    "or_",
]

TAG_FIELDS = ("user_id", "agent_id", "run_id")
ID_FIELDS = (*TAG_FIELDS, "app_id")
TIME_FIELDS = ("created_at", "updated_at")
_RANGE_OPS = ("gt", "gte", "lt", "lte")
META_OPS = ("eq", "ne", "in", "nin", *TEXT_OPS, *_RANGE_OPS)
MAX_TEXT_CHARS = 1000  # a contains / metadata value
MAX_META_KEY_CHARS = 128
# Caller filters are bounded before they become FT.SEARCH text: an OR of 100,000 ids or thousands of
# ANDed ranges would otherwise be parsed, rendered and sent whole (and bypass the 100-id limit of "in").
MAX_FILTER_DEPTH = 8
MAX_FILTER_TERMS = 1000
MAX_IN_VALUES = 100
# Unix seconds that datetime can represent (years 1..9999); beyond them a bound is a mistake or an attack.
_MIN_TIMESTAMP, _MAX_TIMESTAMP = -62135596800, 253402300799


def for_app(node: Node, app_id: str) -> Node:
    """Resolve every app_id condition for one app; the result mentions no app_id."""
    if isinstance(node, (Eq, AnyValue, In)) and node.field == "app_id":
        return EVERYTHING if node.matches({"app_id": app_id}) else NOTHING
    if isinstance(node, And):
        return and_(*(for_app(child, app_id) for child in node.children))
    if isinstance(node, Or):
        return or_(*(for_app(child, app_id) for child in node.children))
    if isinstance(node, Not):
        return not_(for_app(node.child, app_id))
    return node


def render(node: Node) -> str:
    """FT.SEARCH query text (DIALECT 2). Never called with app_id conditions left in."""
    if isinstance(node, Everything):
        return "*"
    if isinstance(node, Eq):
        return f"@{node.field}:{{{escape_tag(node.value)}}}"
    if isinstance(node, AnyValue):
        return f"@{node.field}:{{w'*'}}"
    if isinstance(node, In):
        return f"@{node.field}:{{{' | '.join(escape_tag(v) for v in node.values)}}}"
    if isinstance(node, Range):
        low = f"({node.gt}" if node.gt is not None else (str(node.gte) if node.gte is not None else "-inf")
        high = f"({node.lt}" if node.lt is not None else (str(node.lte) if node.lte is not None else "+inf")
        return f"@{node.field}:[{low} {high}]"
    if isinstance(node, And):
        return "(" + " ".join(render(child) for child in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " | ".join(render(child) for child in node.children) + ")"
    if isinstance(node, Not):
        return f"-{render(node.child)}" if isinstance(node.child, (And, Or)) else f"-({render(node.child)})"
    if isinstance(node, POST_FILTERED):
        raise ValidationError(
            "Filters on the memory text or metadata work in get_all and search only.", field="filters"
        )
    raise ValidationError(f"Cannot query on {node!r}.")


def pinned_value(node: Node, field: str) -> str | None:
    """The exact value a tree requires for ``field`` (an Eq at its top level), if any."""
    parts = node.children if isinstance(node, And) else (node,)
    for part in parts:
        if isinstance(part, Eq) and part.field == field:
            return part.value
    return None


# --- building trees from input ------------------------------------------------


def field_condition(field: str, value, *, strict_app_id: bool = False) -> Node:
    """One field's condition: exact id, ``*`` (any non-null) or ``{"in": [...]}``.

    ``strict_app_id`` applies the app_id alphabet (caller input); internal callers pass stored app_ids,
    which may predate the alphabet and must stay usable (e.g. to offboard such an app)."""
    clean = clean_app_id if strict_app_id and field == "app_id" else clean_id
    if field not in ID_FIELDS:
        raise ValidationError(f"Unsupported filter field: {field}.", field=field)
    if isinstance(value, dict):
        unknown = set(value) - {"in", "nin", "eq", "ne"}
        if unknown or not value:
            raise ValidationError(
                f"Unsupported operator(s) for {field}: {', '.join(sorted(unknown)) or 'none'}; use eq, ne, in or nin.",
                field=field,
            )
        parts = []
        for op, operand in value.items():
            if op in ("eq", "ne"):
                node = field_condition(field, operand, strict_app_id=strict_app_id)
            else:
                if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_VALUES:
                    raise ValidationError(f"{field}.{op} must be a list of 1 to {MAX_IN_VALUES} ids.", field=field)
                node = In(field, tuple(dict.fromkeys(clean(v, field) for v in operand)))
            parts.append(not_(node) if op in ("ne", "nin") else node)
        return and_(*parts)
    cleaned = clean_id(value, field, allow_any=True)
    if cleaned != ANY and clean is clean_app_id:
        clean_app_id(cleaned, field)
    return AnyValue(field) if cleaned == ANY else Eq(field, cleaned)


def filter_from_fields(**fields) -> Node:
    """AND of simple field conditions; None or '' means 'not filtered'."""
    return and_(*(field_condition(name, value) for name, value in fields.items() if value not in (None, "")))


def _timestamp(field: str, op: str, value) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"{field}.{op} must be a date, datetime or unix timestamp.", field=field)
    if isinstance(value, (int, float)):
        if (isinstance(value, float) and not math.isfinite(value)) or not _MIN_TIMESTAMP <= value <= _MAX_TIMESTAMP:
            raise ValidationError(
                f"{field}.{op} must be a finite unix timestamp between years 1 and 9999.", field=field
            )
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp())
    raise ValidationError(f"{field}.{op} must be a date, datetime or unix timestamp.", field=field)


def _time_condition(field: str, value) -> Node:
    if not isinstance(value, dict) or not value:
        raise ValidationError(f"{field} needs an operator: one of {', '.join(_RANGE_OPS)}.", field=field)
    unknown = set(value) - set(_RANGE_OPS)
    if unknown:
        raise ValidationError(f"Unsupported operator(s) for {field}: {', '.join(sorted(unknown))}.", field=field)
    return Range(field, **{op: _timestamp(field, op, v) for op, v in value.items()})


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT_CHARS:
        raise ValidationError(f"{name} must be a string of 1 to {MAX_TEXT_CHARS} characters.", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{name} is not valid Unicode.", field=name) from None
    return value


def _memory_condition(value) -> Node:
    """{"contains": ...} / {"icontains": ...} on the memory text (a substring, not a stemmed word)."""
    if not isinstance(value, dict) or not value or set(value) - set(TEXT_OPS):
        raise ValidationError(
            'memory filters take contains or icontains: {"memory": {"icontains": "tea"}}.', field="memory"
        )
    return and_(*(Contains(_text(f"memory.{op}", v), ignore_case=op == "icontains") for op, v in value.items()))


def _scalar(name: str, value):
    if isinstance(value, str):
        return _text(name, value)
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return value
    raise ValidationError(f"{name} must be a string, a finite number or a boolean.", field=name)


def _metadata_condition(value) -> Node:
    """{"metadata": {key: value | {op: operand}}}: every key's conditions hold."""
    if not isinstance(value, dict) or not value:
        raise ValidationError('metadata filters are an object: {"metadata": {"diet": "vegan"}}.', field="metadata")
    nodes = []
    for key, condition in value.items():
        name = f"metadata.{_text('metadata key', key)[:MAX_META_KEY_CHARS]}"
        if len(key) > MAX_META_KEY_CHARS:
            raise ValidationError(f"metadata keys are at most {MAX_META_KEY_CHARS} characters.", field="metadata")
        ops = condition if isinstance(condition, dict) else {"eq": condition}
        if not ops or set(ops) - set(META_OPS):
            bad = ", ".join(sorted(set(ops) - set(META_OPS))) or "none"
            raise ValidationError(
                f"Unsupported operator(s) for {name}: {bad}; use {', '.join(META_OPS)}.", field="metadata"
            )
        for op, operand in ops.items():
            if op in ("in", "nin"):
                if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_VALUES:
                    raise ValidationError(
                        f"{name}.{op} must be a list of 1 to {MAX_IN_VALUES} values.", field="metadata"
                    )
                operand = tuple(_scalar(f"{name}.{op}", v) for v in operand)
            elif op in TEXT_OPS:
                operand = _text(f"{name}.{op}", operand)
            elif op in _RANGE_OPS:
                if isinstance(operand, bool) or not isinstance(operand, (int, float)) or not math.isfinite(operand):
                    raise ValidationError(f"{name}.{op} must be a finite number.", field="metadata")
            else:
                operand = _scalar(f"{name}.{op}", operand)
            nodes.append(Meta(key, op, operand))
    return and_(*nodes)


def categories_condition(value) -> Node:
    """Memories tagged with any of these categories: ``["food"]``, ``{"in": [...]}`` or ``{"contains": "food"}``.
    memadmin assigns none itself; they are the ``metadata.categories`` list a Mem0 Platform import kept."""
    if isinstance(value, dict) and len(value) == 1 and "contains" in value:
        value = [value["contains"]]
    elif isinstance(value, dict) and len(value) == 1 and "in" in value:
        value = value["in"]
    if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
        raise ValidationError(
            f'categories takes a list of 1 to {MAX_IN_VALUES} names, {{"in": [...]}} or {{"contains": name}}.',
            field="categories",
        )
    return Meta("categories", "any", tuple(dict.fromkeys(_text("categories", v) for v in value)))


class _Budget:
    """Terms left for one filter tree: every field condition counts, every id of an ``in`` list too."""

    def __init__(self):
        self.terms = 0

    def spend(self, n: int) -> None:
        self.terms += n
        if self.terms > MAX_FILTER_TERMS:
            raise ValidationError(
                f"Filters may hold at most {MAX_FILTER_TERMS} conditions (ids of 'in' lists "
                "included): narrow the query or split it.",
                field="filters",
            )


def filter_from_mem0(data, *, depth: int = 0, _budget: _Budget | None = None) -> Node:
    """Parse Mem0 Filters v2 (AND / OR nesting over the fields we hold), bounded in depth and size."""
    budget = _budget or _Budget()
    if depth > MAX_FILTER_DEPTH:
        raise ValidationError(
            f"Filters are nested too deeply: at most {MAX_FILTER_DEPTH} levels of AND / OR.", field="filters"
        )
    if not isinstance(data, dict):
        raise ValidationError("filters must be a JSON object.")
    nodes: list[Node] = []
    for key, value in data.items():
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{key} needs a non-empty list of conditions.")
            if len(value) > MAX_FILTER_TERMS:
                budget.spend(len(value))  # refused before 100,000 children are parsed one by one
            children = [filter_from_mem0(item, depth=depth + 1, _budget=budget) for item in value]
            nodes.append(and_(*children) if key == "AND" else or_(*children))
        elif key == "NOT":
            items = value if isinstance(value, list) else [value]
            if not items or len(items) > MAX_FILTER_TERMS:
                raise ValidationError("NOT needs a non-empty list of conditions.", field="filters")
            nodes.append(not_(or_(*(filter_from_mem0(item, depth=depth + 1, _budget=budget) for item in items))))
        elif key in ID_FIELDS:
            lists = [v for v in value.values() if isinstance(v, list)] if isinstance(value, dict) else []
            budget.spend(sum(len(v) for v in lists) or 1)
            nodes.append(field_condition(key, value, strict_app_id=True))
        elif key == "memory":
            budget.spend(len(value) if isinstance(value, dict) else 1)
            nodes.append(_memory_condition(value))
        elif key == "metadata":
            budget.spend(len(value) if isinstance(value, dict) else 1)
            nodes.append(_metadata_condition(value))
        elif key == "categories":
            budget.spend(1)
            nodes.append(categories_condition(value))
        elif key in TIME_FIELDS:
            budget.spend(len(value) if isinstance(value, dict) else 1)
            nodes.append(_time_condition(key, value))
        else:
            raise ValidationError(f"Unsupported filter field or operator: {key}.", field=key)
    return and_(*nodes)


# --- persisting a tree (a deletion handed to a job keeps its exact filters) -----------------


def node_to_data(node: Node):
    if isinstance(node, (Everything, Nothing)):
        return {"op": type(node).__name__.lower()}
    if isinstance(node, (And, Or)):
        return {"op": type(node).__name__.lower(), "children": [node_to_data(c) for c in node.children]}
    if isinstance(node, Not):
        return {"op": "not", "child": node_to_data(node.child)}
    if isinstance(node, Meta):  # its own "op" is the comparison, kept apart from the node's kind
        value = list(node.value) if isinstance(node.value, tuple) else node.value
        return {"op": "meta", "key": node.key, "compare": node.op, "value": value}
    return {
        "op": type(node).__name__.lower(),
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in node.__dict__.items()},
    }


def node_from_data(data) -> Node:
    kinds = {"eq": Eq, "anyvalue": AnyValue, "in": In, "range": Range, "contains": Contains}
    op = data["op"]
    if op == "not":
        return Not(node_from_data(data["child"]))
    if op == "meta":
        value = tuple(data["value"]) if isinstance(data["value"], list) else data["value"]
        return Meta(data["key"], data["compare"], value)
    if op == "everything":
        return EVERYTHING
    if op == "nothing":
        return NOTHING
    if op in ("and", "or"):
        children = tuple(node_from_data(c) for c in data["children"])
        return And(children) if op == "and" else Or(children)
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k != "op"}
    return kinds[op](**values)
