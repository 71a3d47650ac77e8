"""The API's JSON parser: bounded and valid before anything else sees the body.

DRF's JSONParser hands the view whatever ``json.loads`` builds: documents nested
thousands deep (RecursionError in the parser, or later in a deepcopy), lone
surrogates from ``\\udfff`` escapes (not text: they break Valkey writes, the
tokenizer and every later read or export), ``NaN`` / ``Infinity`` / ``1e999``
(non-finite numbers that break arithmetic and JSON output), and bodies of any
size. Each of them is a 400 (413 for size) in the API's error shape here, so no
request carrying them reaches a view, let alone the store. The rules themselves are
tenants/untrusted_json.py's, which the import files read through too.
"""

from __future__ import annotations

import ast
import math

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from tenants.untrusted_json import MAX_JSON_DEPTH, check_text, loads_untrusted


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1 if limit is not None else -1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"The request body is over {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError(f"The request body is not valid {encoding}.") from None
        return loads_untrusted(text)


LITERAL_HINT = (
    'send filters as JSON, e.g. filters={"user_id": "alice"} (URL-encoded), or as the Python repr of such a '
    "dict that mem0.MemoryClient makes (strings, numbers, True/False/None, lists and dicts only)"
)


def literal_untrusted(text: str):
    """The Python repr of a JSON-like value (what httpx makes of a dict in a query string), parsed without
    evaluating anything: only dict, list, str, finite int/float, True/False/None survive, at most
    MAX_JSON_DEPTH deep, or ParseError. ast.literal_eval would also build sets, tuples, bytes and complex
    numbers, and recurses as deep as the parser lets it."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise exceptions.ParseError(f"filters is neither JSON nor a Python literal: {LITERAL_HINT}.") from None
    return _literal(tree.body, 1)


def _literal(node: ast.AST, depth: int):
    if depth > MAX_JSON_DEPTH:
        raise exceptions.ParseError(f"filters is nested too deeply: at most {MAX_JSON_DEPTH} levels.")
    if isinstance(node, ast.Dict):
        value = {}
        for key, child in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise exceptions.ParseError(f"filters: dict keys must be strings; {LITERAL_HINT}.")
            check_text(key.value)
            value[key.value] = _literal(child, depth + 1)
        return value
    if isinstance(node, ast.List):
        return [_literal(child, depth + 1) for child in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        if isinstance(operand, ast.Constant) and type(operand.value) in (int, float):
            return _number(-operand.value if isinstance(node.op, ast.USub) else operand.value)
    if isinstance(node, ast.Constant):
        if node.value is None or type(node.value) is bool:
            return node.value
        if type(node.value) in (int, float):
            return _number(node.value)
        if type(node.value) is str:
            check_text(node.value)
            return node.value
    what = type(node.value).__name__ if isinstance(node, ast.Constant) else type(node).__name__
    raise exceptions.ParseError(f"filters holds a {what} expression; {LITERAL_HINT}.")


def _number(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise exceptions.ParseError("filters: numbers must be finite (no inf or nan).")
    return value
