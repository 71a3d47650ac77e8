"""A URL converter for stored ids, which may hold any character (Mem0 OSS agents write them directly).

``<str:...>`` cannot reverse an id containing ``/`` (NoReverseMatch: the page that
links to it answers 500) and ``<path:...>`` makes two ids in one URL ambiguous.
This converter percent-encodes the whole id into one path segment, so every id
reverses and resolves back to itself: ``a/b`` -> ``a%2Fb`` (``a%252Fb`` on the
wire, since reverse() escapes the ``%`` once more and the server unescapes once).

A segment of only dots (``.``, ``..``) is a path step to a browser, which removes it
(and ``%2e%2e`` too) before the request leaves: such an id is written ``~..``. So that
the escape stays reversible, an id that itself starts with ``~`` gets one more ``~``.

A NUL character (``%00``) matches nothing: no id holds one (clean_id refuses control characters, and
PostgreSQL text cannot store it), and handed to a PostgreSQL query it is a DataError, a 500 instead of a 404.
"""

from urllib.parse import quote, unquote

ESCAPE = "~"


class StoredIdConverter:
    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        value = unquote(value)
        if "\x00" in value:
            raise ValueError("NUL in an id")  # the URL does not match: 404
        return value[1:] if value.startswith(ESCAPE) else value

    def to_url(self, value) -> str:
        value = str(value)
        if value.startswith(ESCAPE) or not value.strip("."):
            value = ESCAPE + value
        return quote(value, safe="")
