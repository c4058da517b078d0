"""One bounded YAML reader for documents people upload: the specification and OpenAPI documents.

PyYAML's safe loader refuses unsafe tags, but not size: its composer recurses once per nesting
level (in C with libyaml, where 50,000 levels crash the worker; in Python a RecursionError), and
aliases (*name) let a few hundred bytes stand for billions of values ("billion laughs") that every
later step walks. So the document's events are scanned first, iteratively, counting nesting,
aliases and the values it holds with every alias expanded; only a document within the limits of
common/limits.py is composed.
"""

import re
from typing import Any

import yaml

from common import strictjson
from common.limits import LIMITS

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: much faster
# A plain scalar YAML would read as a number: Python refuses to convert over 4,300 digits (a
# ValueError, not a YAML error), and no database stores more than json_number_chars anyway.
_NUMBER = re.compile(r"[-+]?[0-9][0-9_,:.eE+-]*|[-+]?\.[0-9][0-9_eE+-]*")


class YAMLInputError(strictjson.InputError):
    """YAML that is refused, with the reason and, where known, the line and column."""


def _refused(reason: str, event: yaml.Event) -> YAMLInputError:
    mark = event.start_mark
    return YAMLInputError(reason, line=mark.line + 1, column=mark.column + 1)


def check_events(text: str, *, aliases: bool = True) -> None:
    """Raise YAMLInputError unless the document is within the YAML limits (or is not YAML)."""
    # One entry per open collection: [values inside it, its height, its anchor].
    open_: list[list] = []
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) once its node is complete
    total = alias_count = 0

    def add(size: int, height: int, event: yaml.Event) -> None:
        nonlocal total
        total += size
        if total > LIMITS.yaml_nodes:
            raise _refused(
                f"the document holds more than {LIMITS.yaml_nodes:,} values with its aliases expanded", event
            )
        if len(open_) + height > LIMITS.yaml_depth:
            raise _refused(f"the document nests deeper than {LIMITS.yaml_depth} levels", event)
        if open_:
            open_[-1][0] += size
            open_[-1][1] = max(open_[-1][1], height + 1)

    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_) >= LIMITS.yaml_depth:
                    raise _refused(f"the document nests deeper than {LIMITS.yaml_depth} levels", event)
                open_.append([1, 1, event.anchor])
            elif isinstance(event, yaml.CollectionEndEvent):
                size, height, anchor = open_.pop()
                if anchor:
                    sizes[anchor] = (size, height)
                add(size, height, event)
            elif isinstance(event, yaml.ScalarEvent):
                value = event.value
                if not event.style and len(value) > LIMITS.json_number_chars and _NUMBER.fullmatch(value):
                    raise _refused(
                        f"the number {value[:20]}… is {len(value):,} characters long; "
                        f"the limit is {LIMITS.json_number_chars}",
                        event,
                    )
                if event.anchor:
                    sizes[event.anchor] = (1, 0)
                add(1, 0, event)
            elif isinstance(event, yaml.AliasEvent):
                if not aliases:
                    raise _refused("aliases (*name) are not allowed here", event)
                alias_count += 1
                if alias_count > LIMITS.yaml_aliases:
                    raise _refused(f"the document has more than {LIMITS.yaml_aliases} aliases (*name)", event)
                if event.anchor not in sizes:
                    raise _refused(f"the alias *{event.anchor} refers to a value that contains it", event)
                add(*sizes[event.anchor], event)
    except yaml.YAMLError:
        return  # not YAML at all: composing it again gives the parser's own message


def loads(text: str, *, aliases: bool = True) -> Any:
    """Read YAML within the limits; raises YAMLInputError when over one, yaml.YAMLError when not YAML."""
    check_events(text, aliases=aliases)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
