"""Entity ids (user_id, agent_id, run_id, app_id) and TAG escaping.

Ids are exact and case-sensitive. Per character class:

* leading/trailing whitespace is stripped; empty, whitespace-only, longer than
  128 characters, internal whitespace (Mem0 rejects it too), control characters
  (Unicode Cc/Cs, line/paragraph separators), lone surrogates (text that is not
  valid Unicode) and format characters (Unicode Cf: bidi overrides such as
  U+202E, zero-width U+200B/U+200D, U+FEFF, soft hyphen) -> ValidationError: an id
  must look like what it is (``a\u202egpj.exe`` would show as "aexe.jpg");
* the bare value ``*`` -> ValidationError when writing (it means "any value" in
  a filter);
* everything else -- punctuation such as ``| , { } \\ " @ : * -``, non-ASCII
  letters, emoji -- is allowed and matched exactly: every ASCII punctuation
  character is backslash-escaped in queries, and our indexes split TAGs only on
  U+001F, a control character no id can contain.

app_ids are stricter (``clean_app_id``): 1-64 ASCII letters, digits, ``_`` and
``-``, starting with a letter or digit. Tenants create apps, so a slug-like
alphabet costs nothing, and every dashboard URL that names an app reverses.
"""

import re
import string
import unicodedata

from memadmin.memory.errors import ValidationError

MAX_ID_LENGTH = 128
ANY = "*"
TAG_SEPARATOR = "\x1f"
# "_" too: a TAG value that is only underscores ("_") is a syntax error unless escaped.
_ESCAPE = set(string.punctuation)
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_FORMAT_CATEGORY = "Cf"
APP_ID_MAX_LENGTH = 64
APP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # APP_ID_MAX_LENGTH in all
APP_ID_RULE = f"1 to {APP_ID_MAX_LENGTH} ASCII letters, digits, '_' or '-', starting with a letter or digit"


def clean_id(value: object, field: str = "id", *, allow_any: bool = False) -> str:
    """Return the stripped id or raise ValidationError with a message naming the field."""
    if value is None:
        raise ValidationError(f"{field} is required.", field=field)
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValidationError(f"{field} must be a string.", field=field)
    text = str(value).strip()
    if not text:
        raise ValidationError(f"{field} cannot be empty or whitespace.", field=field)
    if len(text) > MAX_ID_LENGTH:
        raise ValidationError(f"{field} is longer than {MAX_ID_LENGTH} characters.", field=field)
    for ch in text:
        category = unicodedata.category(ch)
        if category in _FORBIDDEN_CATEGORIES:
            raise ValidationError(f"{field} cannot contain control characters or invalid Unicode.", field=field)
        if category == _FORMAT_CATEGORY:
            raise ValidationError(
                f"{field} cannot contain invisible or formatting characters (U+{ord(ch):04X}).", field=field
            )
        if ch.isspace():
            raise ValidationError(f"{field} cannot contain whitespace.", field=field)
    if text == ANY and not allow_any:
        raise ValidationError(f"{field} cannot be '*': it is reserved for 'any value' in filters.", field=field)
    return text


def clean_app_id(value: object, field: str = "app_id") -> str:
    """An app_id as apps are created and named from outside: ``clean_id`` plus the slug-like alphabet."""
    text = clean_id(value, field)
    if not APP_ID_RE.fullmatch(text):
        raise ValidationError(f"{field} must be {APP_ID_RULE}.", field=field)
    return text


def id_is_valid(value: object, field: str = "id") -> bool:
    """Whether clean_id would take it: for lookups that only help (a redirect, a suggestion) and must never
    send a control character or a NUL to the database."""
    try:
        clean_id(value, field)
    except ValidationError:
        return False
    return True


def escape_tag(value: str) -> str:
    """Escape a clean id for use inside ``@field:{...}`` so it can never act as query syntax."""
    return "".join(f"\\{ch}" if ch in _ESCAPE else ch for ch in value)
