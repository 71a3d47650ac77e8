"""A URL converter for stored ids, which may hold any character (Mem0 OSS agents write them directly).

``<str:...>`` cannot reverse an id containing ``/`` (NoReverseMatch: the page that
links to it answers 500) and ``<path:...>`` makes two ids in one URL ambiguous.
This converter percent-encodes the whole id into one path segment, so every id
reverses and resolves back to itself: ``a/b`` -> ``a%2Fb`` (``a%252Fb`` on the
wire, since reverse() escapes the ``%`` once more and the server unescapes once).
"""

from urllib.parse import quote, unquote


class StoredIdConverter:
    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value) -> str:
        return quote(str(value), safe="")
