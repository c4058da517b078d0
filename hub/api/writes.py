"""What the configuration endpoints share: the services' refusals as API answers, and a role per
action where one viewset serves readers, operators and admins.

The endpoints call the same services as the pages (hub/services, hub/alerts/services.py), so
validation and audit entries are the same whichever door a change comes through."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.settings import api_settings

from hub.services.errors import ConfigError
from hub.services.users import UserError


class Refused(APIException):
    """A change the hub's rules refuse: 400 for a value that cannot be used, 409 for a state that
    does not allow it now (a system flows use, a flow with open dead letters)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status


def field_errors(exc: DjangoValidationError, rename: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Django's validation errors by API field name; errors of no one field under non_field_errors."""
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
    found: dict[str, list[str]] = {}
    for name, messages in exc.message_dict.items():
        key = (
            api_settings.NON_FIELD_ERRORS_KEY if name == NON_FIELD_ERRORS else (rename or {}).get(name, name)
        )
        found.setdefault(key, []).extend(messages)
    return found


@contextmanager
def refusals(*, conflict: bool = False) -> Iterator[None]:
    """Turn a service's refusal into the API's answer: field errors as a 400 naming each field;
    a ConfigError or UserError as a 400 (or a 409 with `conflict`) with its words."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ValidationError(field_errors(exc)) from None
    except (ConfigError, UserError) as exc:
        raise Refused(str(exc), status=409 if conflict else 400) from None


class RolesByAction:
    """`permission_classes` for reading; `action_roles` names the permission of each other action."""

    action_roles: dict[str, type] = {}

    def get_permissions(self):
        chosen = self.action_roles.get(getattr(self, "action", None))
        return [chosen()] if chosen else super().get_permissions()


class NoBodySerializer(serializers.Serializer):
    """An action that takes no input: any JSON object (or none) is fine."""


def changed_only(validated: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: validated[name] for name in names if name in validated}
