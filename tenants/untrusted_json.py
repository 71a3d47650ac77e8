"""JSON from outside, read strictly: bounded depth, valid Unicode, finite numbers, or ParseError.

``json.loads`` alone builds documents nested thousands deep (RecursionError in the parser, or later in a
deepcopy), keeps lone surrogates from ``\\udfff`` escapes (not text: they break Valkey writes, the tokenizer and
every later read or export) and accepts ``NaN`` / ``Infinity`` / ``1e999`` (non-finite numbers that break
arithmetic and JSON output). The API's body parser (tenants/api/parsers.py) and the import files
(tenants/import_files.py) both read through here; a ParseError is a 400 in the API and a refused file or row in
an import."""

from __future__ import annotations

import json
import math

from rest_framework import exceptions

# Deep enough for any real metadata (Mem0 stores it flat); far below Python's recursion limit.
MAX_JSON_DEPTH = 32


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def check_untrusted(value, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ParseError if ``value`` (a parsed JSON document) is nested too deeply or holds text that
    is not valid Unicode (in keys or values, at any depth). Iterative: it must not recurse either."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise exceptions.ParseError(f"JSON is nested too deeply: at most {max_depth} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item)


def check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise exceptions.ParseError(
            "Text must be valid Unicode: lone surrogates (e.g. \\udfff) are not characters."
        ) from None


def loads_untrusted(text: str | bytes):
    """json.loads for text from outside: strict numbers, bounded depth, valid Unicode, or ParseError."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise exceptions.ParseError(f"JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    check_untrusted(data)
    return data
