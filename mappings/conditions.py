"""Flow filters: small JSON conditions on a record, their plain-language description and a text syntax.

{"path": "stage", "op": "eq", "value": "won"}, {"all": [...]}, {"any": [...]}, {"not": {...}}.
Values compare as numbers when both sides are numbers (numeric text too), otherwise as text.
On a "[]" path a comparison holds when any element matches; the negative operators (ne, not_in,
not_exists) are the exact opposite, so they hold when no element matches.
"""

import difflib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.limits import LIMITS
from common.paths import PathError, compile_path
from mappings.schema import TYPE_WORDS, FieldSpec, is_date_text, is_datetime_text

OPERATOR_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is not one of",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "contains": "contains",
    "exists": "exists",
    "not_exists": "does not exist",
}
NEGATED = {"ne": "eq", "not_in": "in", "not_exists": "exists"}
WITHOUT_VALUE = ("exists", "not_exists")
GROUPS = ("all", "any", "not")

_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?\s*")


class ConditionError(ValueError):
    """A condition that cannot be read or evaluated, explained in plain language."""


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


TOO_DEEP = f"the condition nests deeper than {LIMITS.filter_depth} levels (of not, all, any or parentheses)"


def validate_condition(cond: Any) -> list[str]:
    """Structural problems with a condition, in plain language; empty when fine (None/{} included)."""
    if cond is None or cond == {}:
        return []
    return list(_problems(cond, ""))


def _problems(cond: Any, where: str, depth: int = 0) -> Iterator[str]:
    prefix = f"{where}: " if where else ""
    if not isinstance(cond, dict):
        yield f"{prefix}a condition must be an object"
        return
    if depth >= LIMITS.filter_depth:
        yield TOO_DEEP
        return
    groups = [key for key in GROUPS if key in cond]
    if groups:
        if len(cond) > 1:
            yield f'{prefix}a condition with "{groups[0]}" cannot have other settings'
            return
        key = groups[0]
        if key == "not":
            yield from _problems(cond["not"], f"{where} › not" if where else "not", depth + 1)
            return
        if not isinstance(cond[key], list) or not cond[key]:
            yield f'{prefix}"{key}" needs a non-empty list of conditions'
            return
        for number, inner in enumerate(cond[key], start=1):
            yield from _problems(
                inner, f"{where} › {key} item {number}" if where else f"{key} item {number}", depth + 1
            )
        return
    yield from (f"{prefix}{problem}" for problem in _comparison_problems(cond))


def _comparison_problems(cond: dict) -> Iterator[str]:
    unknown = [str(key) for key in cond if key not in ("path", "op", "value")]
    if unknown:
        yield f"unknown setting {', '.join(unknown)} (use path, op and value, or all, any, not)"
    path = cond.get("path")
    if not isinstance(path, str) or not path.strip():
        yield "choose a field"
    else:
        try:
            compile_path(path)
        except PathError as exc:
            yield str(exc)
    op = cond.get("op")
    if op not in OPERATOR_WORDS:
        yield f'unknown comparison "{op}" (use one of: {", ".join(OPERATOR_WORDS)})'
        return
    if op in WITHOUT_VALUE:
        return
    if "value" not in cond:
        yield f'"{OPERATOR_WORDS[op]}" needs a value to compare with'
    elif op in ("in", "not_in"):
        if not isinstance(cond["value"], list) or not all(_is_scalar(item) for item in cond["value"]):
            yield f'"{OPERATOR_WORDS[op]}" needs a list of values'
    elif not _is_scalar(cond["value"]):
        yield f'"{OPERATOR_WORDS[op]}" needs a single value, not a list or object'


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def evaluate_condition(cond: dict | None, record: dict) -> bool:
    """Whether record passes cond; no condition passes everything. Raises ConditionError."""
    if not cond:
        return True
    if not isinstance(cond, dict):
        raise ConditionError("a condition must be an object")
    for key, combine in (("all", all), ("any", any)):
        if key in cond:
            if not isinstance(cond[key], list):
                raise ConditionError(f'"{key}" needs a list of conditions')
            return combine(evaluate_condition(inner, record) for inner in cond[key])
    if "not" in cond:
        return not evaluate_condition(cond["not"], record)
    op = cond.get("op")
    positive = NEGATED.get(op, op)
    test = _TESTS.get(positive)
    if test is None:
        raise ConditionError(f'unknown comparison "{op}" (use one of: {", ".join(OPERATOR_WORDS)})')
    try:
        path = compile_path(cond.get("path"))
    except PathError as exc:
        raise ConditionError(str(exc)) from None
    found = path.get(record)
    candidates = list(_flatten(found)) if path.has_every else [found]
    expected = cond.get("value")
    matched = any(test(candidate, expected) for candidate in candidates)
    return not matched if op in NEGATED else matched


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return Decimal(value.strip())
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return left == right
    left_number, right_number = _as_number(left), _as_number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return _as_text(left) == _as_text(right)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(left: Any, right: Any) -> bool:
        if left is None or right is None or isinstance(left, dict | list) or isinstance(right, dict | list):
            return False
        left_number, right_number = _as_number(left), _as_number(right)
        if left_number is not None and right_number is not None:
            return compare(left_number, right_number)
        return compare(_as_text(left), _as_text(right))

    return test


def _one_of(left: Any, right: Any) -> bool:
    options = right.split(",") if isinstance(right, str) else right
    if not isinstance(options, list):
        return False
    return any(_equal(left, option.strip() if isinstance(option, str) else option) for option in options)


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str):
        return right is not None and _as_text(right) in left
    if isinstance(left, list):
        return any(_equal(item, right) for item in left)
    if isinstance(left, dict):
        return _as_text(right) in left
    return False


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "in": _one_of,
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "contains": _contains,
    "exists": lambda left, _: left is not None,
}


# --------------------------------------------------------------------------------------------------
# Checking against the source's data model
# --------------------------------------------------------------------------------------------------

ORDERING = ("gt", "gte", "lt", "lte")
_POSITION = re.compile(r"\[[0-9-]+\]")


@dataclass(frozen=True)
class FilterProblem:
    """A comparison that names a field the data model lacks, or can never hold for its type."""

    path: str
    message: str
    unknown_field: bool = False


def check_condition_fields(cond: Any, fields: list[FieldSpec]) -> list[FilterProblem]:
    """What is wrong with a (valid) condition against a data model's fields: unknown fields, with
    the closest known name, and comparisons a value of the field's type can never pass.

    A model without fields declares nothing, so nothing is checked; a field below an object whose
    fields are not listed is not known to be wrong.
    """
    by_path = {spec.path: spec for spec in fields}
    if not by_path:
        return []
    problems: list[FilterProblem] = []
    for comparison in _comparisons(cond):
        path = comparison.get("path")
        if not isinstance(path, str):
            continue
        spec = by_path.get(_POSITION.sub("[]", path))
        if spec is None:
            if not _below_opaque(path, by_path):
                problems.append(_unknown_field(path, by_path))
            continue
        message = _type_problem(path, spec.type, comparison.get("op"), comparison.get("value"))
        if message:
            problems.append(FilterProblem(path, message))
    return list(dict.fromkeys(problems))


def condition_units(cond: Any, fields: list[FieldSpec]) -> list[str]:
    """What the values a condition compares count, where the model says: "amount is in cents (minor units)"."""
    units = {spec.path: spec.unit for spec in fields if spec.unit}
    paths = dict.fromkeys(c.get("path") for c in _comparisons(cond) if c.get("op") not in WITHOUT_VALUE)
    return [f"{path} is {units[path]}" for path in paths if path in units]


def condition_fields(cond: Any) -> set[str]:
    """The record fields a filter compares."""
    return {c["path"] for c in _comparisons(cond) if isinstance(c.get("path"), str)}


def _comparisons(cond: Any) -> Iterator[dict]:
    if not isinstance(cond, dict):
        return
    for key in ("all", "any"):
        for inner in cond.get(key) or ():
            yield from _comparisons(inner)
    if "not" in cond:
        yield from _comparisons(cond["not"])
    if "path" in cond:
        yield cond


def _below_opaque(path: str, by_path: dict[str, FieldSpec]) -> bool:
    """Inside an object or list the model keeps whole (it lists none of its fields)."""
    normal = _POSITION.sub("[]", path)
    for container, spec in by_path.items():
        inside = normal.startswith(f"{container}.") or normal.startswith(f"{container}[]")
        if inside and spec.type in ("object", "array"):
            if not any(other.startswith((f"{container}.", f"{container}[]")) for other in by_path):
                return True
    return False


def _unknown_field(path: str, by_path: dict[str, FieldSpec]) -> FilterProblem:
    close = difflib.get_close_matches(path, list(by_path), n=1, cutoff=0.6)
    if not close:  # "email" for "customer.email": the same last part
        leaf = path.rsplit(".", 1)[-1].lower()
        close = [known for known in by_path if known.rsplit(".", 1)[-1].lower() == leaf][:1]
    hint = f" Did you mean {close[0]}?" if close else " Check the spelling against the fields listed below."
    return FilterProblem(
        path, f'There is no field "{path}", so no record would pass.{hint}', unknown_field=True
    )


NEVER_WORDS = {"eq": "equal to", "in": "one of", "gt": "greater than", "gte": "at least", "lt": "less than",
               "lte": "at most"}  # fmt: skip
ALWAYS_WORDS = {"ne": "different from", "not_in": "not one of"}


def _type_problem(path: str, kind: str, op: Any, value: Any) -> str:
    """Why `path op value` never (or always) holds for a value of type `kind`; empty if it can go either way."""
    values = value if isinstance(value, list) else [value]
    wrong = next((item for item in values if item is not None and not _fits(item, kind)), None)
    if wrong is not None and op in NEVER_WORDS:
        return (
            f"{path} is {TYPE_WORDS[kind]}, so it is never {NEVER_WORDS[op]} {_describe_value(wrong)}."
            f"{_example(path, kind)}"
        )
    if wrong is not None and op in ALWAYS_WORDS:
        return (
            f"{path} is {TYPE_WORDS[kind]}, so it is always {ALWAYS_WORDS[op]} {_describe_value(wrong)} "
            f"and every record passes.{_example(path, kind)}"
        )
    if op in ORDERING and kind in ("object", "array"):
        return f"{path} is {TYPE_WORDS[kind]}: it has no order, so it is never {NEVER_WORDS[op]} anything."
    if op in ORDERING and kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f"{path} is text, so it is compared with {value} letter by letter, not as a number "
            '("9" comes after "10"). Did you mean a number field?'
        )
    if op == "contains" and kind in ("integer", "number", "boolean"):
        return f'{path} is {TYPE_WORDS[kind]}: "contains" looks inside text and lists. Use = instead.'
    return ""


def _fits(value: Any, kind: str) -> bool:
    """Whether `value` (as typed in a filter) can equal or be ordered against a field of `kind`."""
    if kind in ("integer", "number"):
        return _as_number(value) is not None
    if kind == "boolean":
        return isinstance(value, bool) or _as_text(value).lower() in ("true", "false")
    if kind == "date":
        return is_date_text(value)
    if kind == "datetime":
        return is_datetime_text(value)
    return True


def _example(path: str, kind: str) -> str:
    examples = {
        "integer": f"{path} > 100",
        "number": f"{path} > 100",
        "boolean": f"{path} = true",
        "date": f"{path} >= 2026-01-31",
        "datetime": f"{path} >= 2026-01-31T00:00:00Z",
    }
    return f" Compare it like this: {examples[kind]}." if kind in examples else ""


# --------------------------------------------------------------------------------------------------
# Description
# --------------------------------------------------------------------------------------------------


def describe_condition(cond: Any) -> str:
    """A condition in plain words: 'stage is "won" and amount is greater than 100'."""
    if not cond:
        return "always"
    if not isinstance(cond, dict):
        return "(invalid condition)"
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in cond and isinstance(cond[key], list):
            return joiner.join(_describe_inner(inner) for inner in cond[key]) or "always"
    if "not" in cond:
        return f"not {_describe_inner(cond['not'])}"
    op = cond.get("op")
    words = OPERATOR_WORDS.get(op, f'"{op}"')
    if op in WITHOUT_VALUE:
        return f"{cond.get('path')} {words}"
    value = cond.get("value")
    shown = (
        ", ".join(_describe_value(item) for item in value)
        if isinstance(value, list)
        else _describe_value(value)
    )
    return f"{cond.get('path')} {words} {shown}"


def _describe_inner(cond: Any) -> str:
    text = describe_condition(cond)
    if isinstance(cond, dict) and any(
        isinstance(cond.get(key), list) and len(cond[key]) > 1 for key in GROUPS
    ):
        return f"({text})"
    return text


def _describe_value(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


# --------------------------------------------------------------------------------------------------
# Text syntax: 'stage = won and amount > 100', 'currency in EUR, USD', 'customer.email exists'
# --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<symbol>>=|<=|!=|<>|==|=|>|<)
      | (?P<paren>[()])
      | (?P<comma>,)
      | (?P<word>[^\s,()"'=<>!]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_SYMBOLS = {"=": "eq", "==": "eq", "!=": "ne", "<>": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_CONNECTIVES = ("and", "or")
_OPERATOR_HELP = "=, !=, >, >=, <, <=, in, not in, contains, exists or not exists"
_ESCAPE = re.compile(r"\\(.)")


def parse_condition_text(text: str) -> dict:
    """Read the admin's text syntax into a condition; blank text means no filter ({})."""
    if not isinstance(text, str):
        raise ConditionError("the condition must be text")
    if len(text) > LIMITS.filter_chars:
        raise ConditionError(
            f"the condition is {len(text):,} characters long; the limit is {LIMITS.filter_chars:,}"
        )
    tokens = _tokenize(text)
    if not tokens:
        return {}
    return _Parser(tokens).parse()


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue  # trailing spaces
        token = match.group(kind)
        if kind == "bad":
            if token in "\"'":
                raise ConditionError(f"a quote ({token}) is never closed")
            raise ConditionError(
                f'"{token}" is not allowed here; put values with special characters in quotes'
            )
        tokens.append((kind, token))
    return tokens


class _Parser:
    """Recursive descent over the tokens: expression := term (and|or term)*."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0  # open parentheses and "not"s: each is a level of the condition

    def parse(self) -> dict:
        cond = self.expression()
        if self.peek() is not None:
            raise ConditionError(f'unexpected "{self.peek()[1]}"; join conditions with "and" or "or"')
        return cond

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        position = self.position + ahead
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def peek_word(self, ahead: int = 0) -> str | None:
        token = self.peek(ahead)
        return token[1].lower() if token is not None and token[0] == "word" else None

    def expression(self) -> dict:
        items = [self.term()]
        joiner = None
        while self.peek_word() in _CONNECTIVES:
            word = self.take()[1].lower()
            if joiner is not None and word != joiner:
                raise ConditionError(
                    'mixing "and" with "or" is ambiguous; add parentheses, e.g. "a = 1 and (b = 2 or c = 3)"'
                )
            joiner = word
            items.append(self.term())
        if len(items) == 1:
            return items[0]
        return {"all" if joiner == "and" else "any": items}

    def term(self) -> dict:
        token = self.peek()
        if token is None:
            raise ConditionError('expected a comparison such as "stage = won" at the end')
        if token == ("paren", "("):
            self.take()
            inner = self.nested(self.expression)
            if self.peek() != ("paren", ")"):
                raise ConditionError('a "(" is never closed')
            self.take()
            return inner
        if self.peek_word() == "not" and self.peek(1) is not None and self.peek(1)[0] in ("word", "paren"):
            if self.peek_word(1) not in ("in", "exists"):  # "not in" after a field is an operator
                self.take()
                return {"not": self.nested(self.term)}
        return self.comparison()

    def nested(self, read: Callable[[], dict]) -> dict:
        """One level deeper; refused beyond the limit, before the recursion could exhaust the stack."""
        self.depth += 1
        if self.depth > LIMITS.filter_depth:
            raise ConditionError(TOO_DEEP)
        inner = read()
        self.depth -= 1
        return inner

    def comparison(self) -> dict:
        kind, path = self.take()
        if kind != "word":
            raise ConditionError(f'expected a field name, but found "{path}"')
        try:
            compile_path(path)
        except PathError as exc:
            raise ConditionError(str(exc)) from None
        op = self.operator(path)
        if op in WITHOUT_VALUE:
            return {"path": path, "op": op}
        if op in ("in", "not_in"):
            values = [self.value(path, op)]
            while self.peek() == ("comma", ","):
                self.take()
                values.append(self.value(path, op))
            return {"path": path, "op": op, "value": values}
        return {"path": path, "op": op, "value": self.value(path, op)}

    def operator(self, path: str) -> str:
        token = self.peek()
        if token is not None and token[0] == "symbol":
            return _SYMBOLS[self.take()[1]]
        phrases = (
            (("is", "not"), "ne"),
            (("is",), "eq"),
            (("not", "in"), "not_in"),
            (("in",), "in"),
            (("contains",), "contains"),
            (("not", "exists"), "not_exists"),
            (("exists",), "exists"),
        )
        for words, op in phrases:
            if all(self.peek_word(ahead) == word for ahead, word in enumerate(words)):
                self.position += len(words)
                return op
        found = f'"{token[1]}"' if token is not None else "nothing"
        raise ConditionError(f'after "{path}" expected {_OPERATOR_HELP}, but found {found}')

    def value(self, path: str, op: str) -> Any:
        token = self.peek()
        if token is not None and token[0] == "string":
            self.take()
            return _ESCAPE.sub(r"\1", token[1][1:-1])
        words = []
        while (word := self.peek_word()) is not None and word not in _CONNECTIVES:
            words.append(self.take()[1])
        if not words:
            raise ConditionError(f'"{path} {OPERATOR_WORDS[op]}" needs a value to compare with')
        return _bare_value(" ".join(words))


def _bare_value(text: str) -> Any:
    """Unquoted numbers and true/false become JSON numbers and booleans; anything else stays text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _NUMBER.fullmatch(text):
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() and "." not in text else float(number)
    return text
