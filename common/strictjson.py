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

from common.limits import LIMITS

# The limits' reasons are in common/limits.py; these names stay for the readers' callers.
MAX_DEPTH = LIMITS.json_depth
MAX_INTEGER = LIMITS.json_integer_max
MAX_NUMBER_TEXT = LIMITS.json_number_chars
MAX_OBJECT_KEYS = LIMITS.json_object_keys
MAX_TOTAL_KEYS = LIMITS.json_total_keys
MAX_STRING_CHARS = LIMITS.json_string_chars

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


class InputError(ValueError):
    """Input that is refused, with the reason and, where known, the line and column."""

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


class JSONInputError(InputError):
    """JSON that is refused (see InputError)."""

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


class _KeyCounter:
    """An object_pairs_hook that refuses too many keys in one object or in the whole document."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict:
        if len(pairs) > MAX_OBJECT_KEYS:
            raise JSONInputError(f"an object has {len(pairs):,} keys; the limit is {MAX_OBJECT_KEYS:,}")
        self.total += len(pairs)
        if self.total > MAX_TOTAL_KEYS:
            raise JSONInputError(f"the JSON has more than {MAX_TOTAL_KEYS:,} keys in all")
        return dict(pairs)


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((max(len(key), _longest_string(item)) for key, item in value.items()), default=0)
    if isinstance(value, list):
        return max((_longest_string(item) for item in value), default=0)
    return 0


def _check_strings(value: Any) -> None:
    longest = _longest_string(value)
    if longest > MAX_STRING_CHARS:
        raise JSONInputError(
            f"a text value is {longest:,} characters long; the limit is {MAX_STRING_CHARS:,}"
        )


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
    # Each ":" may separate a key; only a text with more of them than one object may hold can
    # break a key limit, so ordinary bodies keep json's fast path.
    hook = _KeyCounter() if text.count(":") > MAX_OBJECT_KEYS else None
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=hook,
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
    if len(text) > MAX_STRING_CHARS:
        _check_strings(value)
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """Apply the same rules to a value that was already parsed (by DRF or a form library)."""
    _check_value(value, max_depth, 0)
    _check_text(value)
    _check_strings(value)
    return value


def _check_value(value: Any, max_depth: int, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise JSONInputError(f"the JSON nests deeper than {max_depth} levels")
        if isinstance(value, dict) and len(value) > MAX_OBJECT_KEYS:
            raise JSONInputError(f"an object has {len(value):,} keys; the limit is {MAX_OBJECT_KEYS:,}")
        for item in value.values() if isinstance(value, dict) else value:
            _check_value(item, max_depth, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise JSONInputError("NaN and Infinity are not JSON numbers; send a finite number or null")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise JSONInputError("an integer does not fit in 64 bits")


def size_over(value: Any, limit: int) -> bool:
    """Whether `value` written as JSON would exceed `limit` characters, without writing it.

    Stops counting at the limit, so a value that repeats one large text a thousand times (the
    same object, shared) costs no more to measure than the limit itself.
    """
    budget = [limit]

    def spend(amount: int) -> bool:
        budget[0] -= amount
        return budget[0] < 0

    def walk(item: Any) -> bool:
        if isinstance(item, str):
            return spend(len(item) + 2)
        if isinstance(item, dict):
            return spend(2) or any(spend(len(str(key)) + 4) or walk(inner) for key, inner in item.items())
        if isinstance(item, list | tuple):
            return spend(2) or any(spend(2) or walk(inner) for inner in item)
        return spend(len(str(item)))

    return walk(value)
