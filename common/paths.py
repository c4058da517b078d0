"""Paths into JSON records: "customer.email", "lines.0.sku", "lines[0].sku", "lines[].sku".

Shared by the connectors (where a target puts a created record's id, where a page keeps its
records) and the mappings (rules, conditions, validation); it depends on nothing of ours.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class PathError(ValueError):
    """A path that cannot be parsed or written, explained in plain language."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One step of a path: a key, a list position, or every element of a list."""

    key: str | None = None
    # A list position from "[2]", or the number a purely numeric key like ".2" would mean on a list.
    index: int | None = None
    every: bool = False


EVERY = Segment(every=True)
# Writing far past the end of a list would pad it with thousands of empty items; refuse instead.
MAX_PADDING = 10_000

_PART = re.compile(r"(?P<key>[^.\[\]{}]*)(?P<brackets>(?:\[[^\[\]]*\])*)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"-?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Path:
    """A parsed path, reusable across records (see compile_path)."""

    text: str
    segments: tuple[Segment, ...]
    has_every: bool = False  # some segment is "[]"

    def get(self, record: Any) -> Any:
        """The value at this path, None when missing; "[]" gives a list with one entry per element."""
        return _read(record, self.segments, 0)

    def set(self, record: dict, value: Any, *, skip_none: bool = False) -> None:
        """Write value, creating objects and lists on the way.

        Under "[]", a list value fills the items by position and any other value is written into
        every existing item. With skip_none, None elements of such a list are not written.
        """
        if not isinstance(record, dict):
            raise PathError("can only write into an object")
        first = self.segments[0]
        if first.key is None:
            raise PathError(f'"{self.text}" must start with a field name')
        _write(record, first, self.segments[1:], value, skip_none, self.text)

    def __str__(self) -> str:
        return self.text


def compile_path(text: str) -> Path:
    """Parse a path once; raises PathError with a plain-language reason."""
    if not isinstance(text, str):
        raise PathError("a path must be text")
    return _parse_path(text)


@lru_cache(maxsize=4096)
def _parse_path(text: str) -> Path:
    if not text.strip():
        raise PathError("the path is empty")
    segments: list[Segment] = []
    for position, part in enumerate(text.split(".")):
        match = _PART.fullmatch(part)
        if match is None:
            raise PathError(f'"{text}" is not a valid path: brackets or braces are out of place in "{part}"')
        key = match["key"]
        if key:
            if key != key.strip():
                raise PathError(f'"{text}" is not a valid path: "{key}" starts or ends with a space')
            segments.append(Segment(key=key, index=int(key) if _DIGITS.fullmatch(key) else None))
        elif position > 0 or not match["brackets"]:
            raise PathError(f'"{text}" is not a valid path: it has an empty part')
        for inner in _BRACKET.findall(match["brackets"]):
            if inner == "":
                segments.append(EVERY)
            elif _INDEX.fullmatch(inner):
                segments.append(Segment(index=int(inner)))
            else:
                raise PathError(f'"{text}" is not a valid path: use [] or a number like [0], not "[{inner}]"')
    return Path(text, tuple(segments), any(segment.every for segment in segments))


def get_path(record: Any, path: str) -> Any:
    """The value at path in record, or None when any part is missing."""
    return compile_path(path).get(record)


def set_path(record: dict, path: str, value: Any) -> None:
    """Write value at path in record, creating objects and lists as needed."""
    compile_path(path).set(record, value)


def _read(value: Any, segments: tuple[Segment, ...], start: int) -> Any:
    for position in range(start, len(segments)):
        segment = segments[position]
        if segment.every:
            if not isinstance(value, list):
                return None
            return [_read(item, segments, position + 1) for item in value]
        if isinstance(value, dict):
            if segment.key is None:
                return None
            value = value.get(segment.key)
        elif isinstance(value, list) and segment.index is not None:
            try:
                value = value[segment.index]
            except IndexError:
                return None
        else:
            return None
    return value


def _write(
    holder: dict | list, slot: Segment, rest: tuple[Segment, ...], value: Any, skip_none: bool, text: str
) -> None:
    if not rest:
        _put(holder, slot, value, text, pad=lambda: None)
        return
    following, tail = rest[0], rest[1:]
    if following.every:
        if isinstance(value, list):
            if skip_none and all(item is None for item in value):
                return
            items = _child(holder, slot, list, text)
            for position, item in enumerate(value):
                if not (skip_none and item is None):
                    _write(items, Segment(index=position), tail, item, skip_none, text)
        else:
            items = _peek(holder, slot)
            if isinstance(items, list):
                for position in range(len(items)):
                    _write(items, Segment(index=position), tail, value, skip_none, text)
        return
    child = _child(holder, slot, dict if following.key is not None else list, text)
    _write(child, following, tail, value, skip_none, text)


def _peek(holder: dict | list, slot: Segment) -> Any:
    if isinstance(holder, dict):
        return holder.get(slot.key)
    try:
        return holder[slot.index]
    except IndexError:
        return None


def _child(holder: dict | list, slot: Segment, kind: type, text: str) -> Any:
    existing = _peek(holder, slot)
    if existing is None:
        created = kind()
        _put(holder, slot, created, text, pad=kind)
        return created
    # A numeric key such as "lines.0" may step into an existing list.
    if isinstance(existing, kind) or (isinstance(existing, list) and kind is dict and _is_position(slot)):
        return existing
    wanted = "a list" if kind is list else "an object"
    raise PathError(
        f'cannot write "{text}": {_slot_name(slot)} already holds {_kind_of(existing)}, not {wanted}'
    )


def _is_position(slot: Segment) -> bool:
    return slot.index is not None


def _put(holder: dict | list, slot: Segment, value: Any, text: str, pad: Any) -> None:
    if isinstance(holder, dict):
        holder[slot.key] = value
        return
    index = slot.index
    if index < 0:
        if -index > len(holder):
            raise PathError(f'cannot write "{text}": position {index} is before the start of the list')
    elif index >= len(holder):
        if index - len(holder) > MAX_PADDING:
            raise PathError(f'cannot write "{text}": position {index} is too far past the end of the list')
        holder.extend(pad() for _ in range(index + 1 - len(holder)))
    holder[index] = value


def _slot_name(slot: Segment) -> str:
    return f'"{slot.key}"' if slot.key is not None else f"position {slot.index}"


# How a value is named in messages; bool before int, since True is an int too.
_KIND_WORDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (dict, "an object"),
    (list, "a list"),
    (str, "text"),
    (bool, "true/false"),
    ((int, float), "a number"),
)


def _kind_of(value: Any) -> str:
    return next((words for kind, words in _KIND_WORDS if isinstance(value, kind)), "a value")
