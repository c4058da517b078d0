from collections.abc import Iterable

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models


class ConfigError(Exception):
    """A configuration change that cannot be made, with the reason in plain words."""


def validation_message(exc: ValidationError) -> str:
    """Django's validation errors as one line, each named by its field: "base_url: Enter a valid URL."."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "; ".join(
        " ".join(messages) if name == NON_FIELD_ERRORS else f"{name}: {' '.join(messages)}"
        for name, messages in exc.message_dict.items()
    )


def values_check(row: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Refuse values a row's own fields cannot hold (length, choices, numbers) before it is saved,
    so every entry point gets the same words and no database error."""
    try:
        row.clean_fields(exclude=list(exclude))
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None
