"""Every URL pattern of the project, walked from the root resolver, for the tests that cover
every route (the form fuzzer, the role matrix)."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# A path argument, as path() writes it (<int:pk>) or as a regex (DRF's routers: (?P<pk>...)).
ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


@dataclass(frozen=True)
class Route:
    name: str | None
    pattern: str  # the whole pattern from the root, as the resolvers print it
    callback: Callable

    @property
    def arguments(self) -> set[str]:
        return {a or b for a, b in ARGUMENT.findall(self.pattern)}


def all_routes() -> list[Route]:
    """Every URL pattern, nested includes flattened, in resolution order."""
    found: list[Route] = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append(Route(pattern.name, prefix + str(pattern.pattern), pattern.callback))

    walk(get_resolver(), "")
    return found
