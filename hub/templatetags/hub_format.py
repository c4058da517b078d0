import json
from typing import Any

from django import template

from connectors.base import ErrorClass

register = template.Library()

# JSON inside a string inside JSON is undone this many times at most (a body is usually one level).
UNPACK_DEPTH = 4
# The parts of a request or response summary (connectors.base.Exchange) shown on its first line.
FIRST_LINE = ("method", "url", "status")


def unpacked(value: Any, depth: int = 0) -> Any:
    """`value` with every string that holds a JSON object or array replaced by what it holds, so a
    stored body shows as the JSON it is, not as an escaped string."""
    if isinstance(value, str):
        if depth < UNPACK_DEPTH and value.strip()[:1] in ("{", "["):
            try:
                return unpacked(json.loads(value), depth + 1)
            except ValueError:
                return value  # text that only starts like JSON (or was cut short) stays text
        return value
    if isinstance(value, dict):
        return {key: unpacked(item, depth) for key, item in value.items()}
    if isinstance(value, list):
        return [unpacked(item, depth) for item in value]
    return value


@register.filter
def readable(value: Any) -> str:
    """A body, record or request/response summary (stored already redacted) as a person reads it:
    JSON indented, also JSON kept as a string inside it; any other text as it is."""
    value = unpacked(value)
    if value is None or value == "":
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.inclusion_tag("hub/_exchange.html")
def exchange(summary: dict | None, empty: str = "(none)") -> dict[str, Any]:
    """One attempt's request or response: its first line ("POST /url", "HTTP 422"), the headers
    folded away, the body readable; `empty` when nothing was recorded."""
    rest = dict(summary or {})
    first_line = {key: rest.pop(key) for key in FIRST_LINE if rest.get(key) not in (None, "")}
    headers, body = rest.pop("headers", None), rest.pop("body", None)
    return {
        "first_line": first_line, "headers": headers, "body": body, "rest": rest,
        "recorded": bool(summary), "empty": empty,
    }  # fmt: skip


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
