"""One strict JSON reader for everything that accepts JSON from outside.

Python's json module accepts what no database or other system will take: NaN and Infinity,
numbers that overflow to infinity, integers thousands of digits long, text with lone UTF-16
surrogates or NUL characters, and nesting deep enough to exhaust the stack. Each is refused
here with one precise message, so webhooks, the publish API, forms, replays and the mapper
preview answer a 400 or a form error instead of a 500 later on.
"""

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
# Integers must fit in 64 bits: what PostgreSQL, SQLite and most APIs can hold without loss.
MAX_INTEGER = 2**64 - 1
MAX_NUMBER_TEXT = 64  # characters; refuses "1e999…" and 4,000-digit integers before converting

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


class JSONInputError(ValueError):
    """JSON that is refused, with the reason and, where known, the line and column."""

    def __init__(self, reason: str, *, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(self.located)

    @property
    def located(self) -> str:
        """ "line 2 column 16: Expecting value", or the reason alone where no position applies."""
        if self.line is None:
            return self.reason
        return f"line {self.line} column {self.column}: {self.reason}"

    @property
    def message(self) -> str:
        """The sentence an API answers with."""
        if self.line is None:
            return self.reason
        return f"malformed JSON at line {self.line} column {self.column}: {self.reason}"


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_TEXT:
        raise JSONInputError(
            f"the number {text[:20]}… is {len(text)} characters long; the limit is {MAX_NUMBER_TEXT}"
        )
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"the number {text} is too large to store")
    return value


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_TEXT:
        raise JSONInputError(
            f"the number {text[:20]}… is {len(text)} digits long; the limit is {MAX_NUMBER_TEXT}"
        )
    value = int(text)
    if abs(value) > MAX_INTEGER:
        raise JSONInputError(f"the integer {text} does not fit in 64 bits")
    return value


def nesting_depth(text: str | bytes) -> int:
    """How deeply objects and lists nest, ignoring brackets inside strings."""
    data = text.encode() if isinstance(text, str) else text
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _check_text(value: Any) -> None:
    """Refuse NUL characters and lone surrogates anywhere in keys or values."""
    if isinstance(value, str):
        if "\x00" in value:
            raise JSONInputError("the JSON contains a NUL character (\\u0000), which cannot be stored")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONInputError(
                "the JSON contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON strictly; raise JSONInputError with a precise message for anything refused."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"the body is not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    if not text.strip():
        raise JSONInputError("empty body: expected JSON")
    # Counting brackets is cheap; the exact scan runs only when there could be too many.
    if (text.count("[") + text.count("{")) > max_depth and nesting_depth(text) > max_depth:
        raise JSONInputError(f"the JSON nests deeper than {max_depth} levels")
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_parse_float, parse_int=_parse_int
        )
    except json.JSONDecodeError as exc:
        raise JSONInputError(exc.msg, line=exc.lineno, column=exc.colno) from None
    except _Constant as exc:
        line, column = _position(text, max(0, text.find(str(exc))))
        raise JSONInputError(
            f"{exc} is not a JSON value (use null or a number)", line=line, column=column
        ) from None
    except RecursionError:
        raise JSONInputError(f"the JSON nests deeper than {max_depth} levels") from None
    if "\\u0000" in text or _SURROGATE_ESCAPE_TEXT.search(text):
        _check_text(value)
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """Apply the same rules to a value that was already parsed (by DRF or a form library)."""
    _check_value(value, max_depth, 0)
    _check_text(value)
    return value


def _check_value(value: Any, max_depth: int, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise JSONInputError(f"the JSON nests deeper than {max_depth} levels")
        for item in value.values() if isinstance(value, dict) else value:
            _check_value(item, max_depth, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise JSONInputError("NaN and Infinity are not JSON numbers; send a finite number or null")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise JSONInputError("an integer does not fit in 64 bits")
