import re

from django.core.exceptions import ValidationError as DjangoValidationError

from memadmin.memory.errors import ValidationError
from memadmin.memory.ids import clean_app_id, clean_id

COLLECTION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")


def validate_entity_id(value: str) -> None:
    try:
        if clean_id(value) != value:
            raise ValidationError("remove leading/trailing whitespace.")
    except ValidationError as exc:
        raise DjangoValidationError(exc.message.replace("id ", "This id ", 1)) from None


def validate_app_id(value: str) -> None:
    """The app_id alphabet (memadmin.memory.ids.clean_app_id), for Django admin and model forms."""
    try:
        clean_app_id(value)
    except ValidationError as exc:
        raise DjangoValidationError({"app_id": exc.message}) from None


def validate_collection_name(value: str) -> None:
    # Collection names go into key prefixes and SCAN patterns: keep them glob- and colon-free.
    if not COLLECTION_RE.match(value):
        raise DjangoValidationError(
            "Collection names are 1-100 letters, digits, '_' or '-', and cannot start with '-'."
        )
