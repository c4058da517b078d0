"""Telling the person at the screen how a change went, the same way on every page."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest

from hub.services.errors import ConfigError


def change_made(
    request: HttpRequest, change: Callable[[], object], *, success: str, refused: str = "{error}"
) -> bool:
    """Make one configuration change; say so, or say why not. True when it was made."""
    try:
        change()
    except ConfigError as exc:
        messages.error(request, refused.format(error=exc))
        return False
    messages.success(request, success)
    return True
