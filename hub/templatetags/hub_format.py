import json
from typing import Any

from django import template

from connectors.base import ErrorClass

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Stored request/response summaries (already redacted), as indented JSON."""
    if value in (None, "", {}, []):
        return "(none)"
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def error_text(error_class: str) -> str:
    """A failure class in plain words; an unknown stored value is shown as it is."""
    try:
        return ErrorClass(error_class).description
    except ValueError:
        return error_class or ErrorClass.UNKNOWN.description


@register.filter
def error_next_step(error_class: str) -> str:
    """What a person does about a failure class; an unknown stored value as an unexpected error."""
    try:
        return ErrorClass(error_class).next_step
    except ValueError:
        return ErrorClass.UNKNOWN.next_step
