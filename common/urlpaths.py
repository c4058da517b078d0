"""Paths on a system's base URL ("/deals", "/v2/people?active=1"), the rule both the data models'
resource paths and the connectors' paths follow: a path only ever names something on the system's
own server, so nothing written in one can send a request, or its credentials, anywhere else."""

import re
from urllib.parse import unquote

from django.core.exceptions import ValidationError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def relative_path_problem(value: str) -> str:
    """Why `value` cannot be a path on a base URL, in plain words ("" when it can)."""
    if not value:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "A path cannot contain line breaks, tabs or other control characters."
    if "\\" in value:
        return "A path cannot contain “\\”: some servers read it as “/” and it could lead elsewhere."
    scheme = _SCHEME.match(value)
    if scheme and (value[scheme.end() :].startswith("//") or scheme.group().lower() in ("http:", "https:")):
        return (
            f"Enter a path on the system's base URL, such as /deals, not a full address ({value[:60]}): "
            "the hub only sends a system's requests, and its credentials, to its own base URL."
        )
    if value.startswith("//"):
        return (
            f"A path cannot start with “//” ({value[:60]}): that names another server. Use one “/”, "
            "e.g. /deals."
        )
    path = value.split("?", 1)[0].split("#", 1)[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return f"A path cannot contain “.” or “..” steps ({value[:60]}): write the path as it is, e.g. /v2/deals."
    return ""


def relative_path(value: str) -> None:
    """Validator: a path on the system's base URL (see relative_path_problem)."""
    if problem := relative_path_problem(value):
        raise ValidationError(problem, code="not_relative")
