"""The transform registry: small pure functions with a label and an option schema.

The mapper UI lists TRANSFORMS through catalogue() without special cases; the engine runs them
through apply_transform(). A transform receives one value; given a list it runs on each element,
unless it is flagged whole_list (join, first, count). None passes straight through unless the
transform handles_none (default, template, concat, count).
"""

import difflib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser

from common.paths import Path, PathError, compile_path

OPTION_TYPES = ("string", "integer", "number", "boolean", "choice", "mapping", "string_list", "any")


class TransformError(ValueError):
    """A value or option a transform cannot handle, in plain language and without a rule prefix."""


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: str  # one of OPTION_TYPES
    label: str
    required: bool = False
    default: Any = None
    choices: tuple = ()
    help: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "required": self.required,
            "default": self.default,
            "choices": list(self.choices),
            "help": self.help,
        }


@dataclass(frozen=True)
class Transform:
    name: str
    label: str
    description: str
    options: tuple[OptionSpec, ...]
    func: Callable[..., Any]
    whole_list: bool = False
    needs_record: bool = False
    handles_none: bool = False
    # Checks across options beyond their types (e.g. a valid time zone); gets the resolved options.
    check: Callable[[dict], list[str]] | None = None


TRANSFORMS: dict[str, Transform] = {}


def transform(
    name: str,
    *,
    label: str,
    description: str,
    options: tuple[OptionSpec, ...] = (),
    whole_list: bool = False,
    needs_record: bool = False,
    handles_none: bool = False,
    check: Callable[[dict], list[str]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as a transform under name."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} is already registered")
        TRANSFORMS[name] = Transform(
            name, label, description, options, func, whole_list, needs_record, handles_none, check
        )
        return func

    return register


def validate_options(name: str, options: dict) -> list[str]:
    """Problems with a transform name and its options, in plain language; empty when fine."""
    found = TRANSFORMS.get(name) if isinstance(name, str) else None
    if found is None:
        return [_unknown_transform(name)]
    if options is None:
        options = {}
    if not isinstance(options, dict):
        return ["the options must be an object"]
    specs = {spec.name: spec for spec in found.options}
    problems = []
    for key in options:
        if key not in specs:
            known = f"its options are {', '.join(specs)}" if specs else "it has no options"
            problems.append(f'unknown option "{key}" ({known})')
    for spec in found.options:
        value = options.get(spec.name)
        if value is None:
            if spec.required:
                problems.append(f'"{spec.label}" is required')
        elif problem := _option_type_problem(spec, value):
            problems.append(problem)
    if not problems and found.check is not None:
        problems.extend(found.check(resolve_options(found, options)))
    return problems


def resolve_options(found: Transform, options: dict) -> dict:
    """Every option of the transform, given ones first, defaults for the rest."""
    options = options or {}
    return {
        spec.name: options[spec.name] if options.get(spec.name) is not None else spec.default
        for spec in found.options
    }


def apply_transform(found: Transform, value: Any, options: dict, record: dict | None = None) -> Any:
    """Run a transform on value with already validated and resolved options."""
    if isinstance(value, list) and not found.whole_list:
        return [_apply_to_item(found, item, position, options, record) for position, item in enumerate(value)]
    if value is None and not found.handles_none:
        return None
    if found.needs_record:
        return found.func(value, record=record, **options)
    return found.func(value, **options)


def _apply_to_item(found: Transform, item: Any, position: int, options: dict, record: dict | None) -> Any:
    try:
        return apply_transform(found, item, options, record)
    except TransformError as exc:
        raise TransformError(f"item {position + 1}: {exc}") from None


def run_transform(name: str, value: Any, options: dict | None = None, record: dict | None = None) -> Any:
    """Validate options, then run one transform; raises TransformError."""
    problems = validate_options(name, options or {})
    if problems:
        raise TransformError("; ".join(problems))
    found = TRANSFORMS[name]
    return apply_transform(found, value, resolve_options(found, options or {}), record)


def catalogue() -> list[dict]:
    """Every transform as JSON for the mapper UI, in registration order."""
    return [
        {
            "name": found.name,
            "label": found.label,
            "description": found.description,
            "whole_list": found.whole_list,
            "needs_record": found.needs_record,
            "options": [spec.as_dict() for spec in found.options],
        }
        for found in TRANSFORMS.values()
    ]


def describe_value(value: Any) -> str:
    """A value as it appears in messages: "abc" quoted, numbers bare, lists and objects named."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else f"{value[:57]}..."
        return f'"{shown}"'
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def text_of(value: Any) -> str:
    """A value as text the way a person would write it (true, 12.5, JSON for lists and objects)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _unknown_transform(name: Any) -> str:
    message = f'unknown transform "{name}"'
    if isinstance(name, str):
        close = difflib.get_close_matches(name, TRANSFORMS, n=1)
        if close:
            message += f' (did you mean "{close[0]}"?)'
    return message


# Option type -> (does a value fit, what the option must be).
_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "must be text"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "must be a whole number"),
    "number": (lambda v: _is_plain_number(v), "must be a number"),
    "boolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "mapping": (
        lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
        "must be a table of text keys and values",
    ),
    "string_list": (
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
        "must be a list of text",
    ),
}


def _option_type_problem(spec: OptionSpec, value: Any) -> str | None:
    label = f'"{spec.label}"'
    if spec.type == "choice":
        if value in spec.choices:
            return None
        return f"{label} must be one of: {', '.join(spec.choices)} (not {describe_value(value)})"
    fits, requirement = _OPTION_CHECKS.get(spec.type, (lambda v: True, ""))
    return None if fits(value) else f"{label} {requirement}"


def _is_plain_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


# --------------------------------------------------------------------------------------------------
# Shared readers: text, numbers, dates, time zones, currencies
# --------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")
_GROUPED_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
# Beyond float range; also keeps int() of "1e999999999" from running out of memory.
_MAX_MAGNITUDE = 308
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Two different fallbacks for missing date parts: a text that parses differently under each lacks them.
_LOOSE_DEFAULTS = (datetime(2000, 1, 1), datetime(2001, 2, 2))
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# ISO 4217 minor-unit exponents that differ from the usual 2.
_CURRENCY_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV")
        + ("XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}


def currency_exponent(code: str) -> int:
    """Digits after the decimal point for an ISO 4217 currency code."""
    return _CURRENCY_EXPONENTS.get(code, 2)


def _require_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TransformError(f"expects text, but got {describe_value(value)}")
    return value


def to_decimal(value: Any, *, allow_grouping: bool = False) -> Decimal:
    """An exact Decimal from a number or numeric text; raises TransformError."""
    if isinstance(value, bool):
        raise TransformError(f"cannot convert {describe_value(value)} to a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise TransformError(f"cannot convert {describe_value(value)} to a number")
        number = Decimal(repr(value))  # repr keeps 0.1 as 0.1, not its binary expansion
    elif isinstance(value, Decimal) and value.is_finite():
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if allow_grouping and _GROUPED_NUMBER.fullmatch(text):
            text = text.replace(",", "")
        if not _NUMBER.fullmatch(text):
            raise TransformError(f"cannot convert {describe_value(value)} to a number")
        number = Decimal(text)
    else:
        raise TransformError(f"cannot convert {describe_value(value)} to a number")
    if number and number.adjusted() > _MAX_MAGNITUDE:
        raise TransformError(f"{describe_value(value)} is too large")
    return number


def _to_float(number: Decimal, original: Any) -> float:
    result = float(number)
    if not math.isfinite(result):
        raise TransformError(f"{describe_value(original)} is too large")
    return result


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TransformError(
            f'unknown time zone "{name}" (use a name like "Europe/Paris" or "UTC")'
        ) from None


def _timezone_problems(options: dict) -> list[str]:
    try:
        _zone(options["timezone"])
    except TransformError as exc:
        return [str(exc)]
    return []


def _read_datetime(value: Any, input_format: str | None = None) -> datetime:
    """A datetime (naive when the input has no offset) from text or unix seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise TransformError(f"{describe_value(value)} is not a timestamp I can read") from None
    text = _require_text(value).strip()
    if input_format:
        try:
            return datetime.strptime(text, input_format)
        except ValueError:
            raise TransformError(
                f'{describe_value(value)} does not match the format "{input_format}"'
            ) from None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return _read_loose_datetime(value, text)


def _read_loose_datetime(value: Any, text: str) -> datetime:
    try:
        first, second = (date_parser.parse(text, default=fallback) for fallback in _LOOSE_DEFAULTS)
    except (ValueError, OverflowError):
        raise TransformError(f"{describe_value(value)} is not a date I can read") from None
    if first.date() != second.date():
        raise TransformError(
            f"{describe_value(value)} is not a complete date (it needs a day, month and year)"
        )
    return first


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else text


def _format_moment(value: Any, output_format: str | None, timezone: str) -> str:
    zone = _zone(timezone)
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        # A calendar date has no time of day to shift: it stays the same date in any zone.
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise TransformError(f"{describe_value(value)} is not a date I can read") from None
        moment = datetime(day.year, day.month, day.day, tzinfo=zone)
    else:
        moment = _read_datetime(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            moment = moment.astimezone(zone)
        except (OverflowError, ValueError):
            raise TransformError(f"{describe_value(value)} is out of range") from None
    if not output_format:
        return _iso(moment)
    try:
        return moment.strftime(output_format)
    except ValueError:
        raise TransformError(f'cannot format {describe_value(value)} with "{output_format}"') from None


def _currency_problems(options: dict) -> list[str]:
    currency, currency_path = options["currency"], options["currency_path"]
    if bool(currency) == bool(currency_path):
        return ['choose either "Currency" or "Currency field"']
    if currency and not _CURRENCY_CODE.fullmatch(currency.strip().upper()):
        return [f'"{currency}" is not a currency code like "EUR"']
    return _path_problems([currency_path] if currency_path else [])


def _path_problems(paths: list[str]) -> list[str]:
    problems = []
    for text in paths:
        try:
            compile_path(text)
        except PathError as exc:
            problems.append(str(exc))
    return problems


def _currency_of(record: dict | None, currency: str | None, currency_path: str | None) -> str:
    if currency:
        return currency.strip().upper()
    found = compile_path(currency_path).get(record)
    if found is None:
        raise TransformError(f'the record has no currency at "{currency_path}"')
    code = found.strip().upper() if isinstance(found, str) else ""
    if not _CURRENCY_CODE.fullmatch(code):
        raise TransformError(
            f'{describe_value(found)} at "{currency_path}" is not a currency code like "EUR"'
        )
    return code


# --------------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------------

CAST_TARGETS = ("string", "integer", "number", "boolean", "decimal")
_TRUE_WORDS = frozenset({"yes", "true", "1"})
_FALSE_WORDS = frozenset({"no", "false", "0"})


@transform(
    "cast",
    label="Change type",
    description="Converts the value to text, a whole number, a number, true/false, or an exact decimal (as text).",
    options=(OptionSpec("to", "choice", "Convert to", required=True, choices=CAST_TARGETS),),
)
def cast(value: Any, *, to: str) -> Any:
    if to == "string":
        return text_of(value)
    if to == "boolean":
        return _to_boolean(value)
    number = to_decimal(value)
    if to == "integer":
        if number != number.to_integral_value():
            raise TransformError(
                f"cannot convert {describe_value(value)} to an integer: it has a fractional part"
            )
        return int(number)
    if to == "number":
        return _to_float(number, value)
    return format(number, "f")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = text_of(value).strip().lower() if isinstance(value, str | int) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise TransformError(
        f"cannot convert {describe_value(value)} to true/false (use yes/no, true/false or 1/0)"
    )


@transform(
    "parse_datetime",
    label="Read date and time",
    description="Reads a date and time and writes it as ISO 8601 in UTC, e.g. 2026-11-23T10:00:00Z.",
    options=(
        OptionSpec(
            "format",
            "string",
            "Input format",
            help="strptime codes such as %d/%m/%Y %H:%M; leave empty for ISO 8601 and common formats.",
        ),
        OptionSpec(
            "timezone",
            "string",
            "Time zone of the input",
            default="UTC",
            help="Used when the input has no offset, e.g. Europe/Paris.",
        ),
    ),
    check=_timezone_problems,
)
def parse_datetime(value: Any, *, format: str | None, timezone: str) -> str:
    moment = _read_datetime(value, format)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(timezone))
    try:
        return _iso(moment.astimezone(UTC))
    except (OverflowError, ValueError):
        raise TransformError(f"{describe_value(value)} is out of range") from None


@transform(
    "format_datetime",
    label="Format date and time",
    description="Writes a date and time (ISO text, a date, or unix seconds) in a chosen format and time zone.",
    options=(
        OptionSpec("format", "string", "Output format", help="strftime codes; leave empty for ISO 8601."),
        OptionSpec("timezone", "string", "Time zone", default="UTC", help="Converted to before formatting."),
    ),
    check=_timezone_problems,
)
def format_datetime(value: Any, *, format: str | None, timezone: str) -> str:
    return _format_moment(value, format, timezone)


@transform(
    "format_date",
    label="Format date",
    description="Writes the date part of a date or date and time in a chosen format, e.g. 23/11/2026.",
    options=(
        OptionSpec("format", "string", "Output format", default="%Y-%m-%d", help="strftime codes."),
        OptionSpec("timezone", "string", "Time zone", default="UTC", help="Whose calendar day to use."),
    ),
    check=_timezone_problems,
)
def format_date(value: Any, *, format: str, timezone: str) -> str:
    return _format_moment(value, format, timezone)


@transform(
    "lookup",
    label="Look up in a table",
    description="Replaces the value with the matching entry of a table, e.g. won → closed.",
    options=(
        OptionSpec("table", "mapping", "Table", required=True),
        OptionSpec(
            "default", "any", "When not found", help="Used when the table has no entry; else an error."
        ),
        OptionSpec("case_insensitive", "boolean", "Ignore upper/lower case", default=False),
    ),
)
def lookup(value: Any, *, table: dict, default: Any, case_insensitive: bool) -> Any:
    key = text_of(value)
    if key in table:
        return table[key]
    if case_insensitive:
        folded = key.casefold()
        for candidate, result in table.items():
            if candidate.casefold() == folded:
                return result
    if default is not None:
        return default
    if not table:
        raise TransformError(f"no entry for {describe_value(value)}: the lookup table is empty")
    known = ", ".join(f'"{candidate}"' for candidate in list(table)[:5]) + (", ..." if len(table) > 5 else "")
    raise TransformError(f"no entry for {describe_value(value)} in the lookup table (it has {known})")


_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@lru_cache(maxsize=512)
def _parse_template(template: str) -> tuple[str | Path | None, ...]:
    """Template parts: literal text, a Path to read from the record, or None for {value}."""
    parts: list[str | Path | None] = []
    position = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        if match.start() > position:
            parts.append(template[position : match.start()])
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif name is None:
            raise TransformError(
                f'the template has an unmatched "{token}" (write {token}{token} for a literal one)'
            )
        elif name.strip() == "value":
            parts.append(None)
        else:
            try:
                parts.append(compile_path(name.strip()))
            except PathError as exc:
                raise TransformError(f'the template placeholder "{token}" is not a field: {exc}') from None
        position = match.end()
    if position < len(template):
        parts.append(template[position:])
    return tuple(parts)


def fields_read(step: Any) -> set[str]:
    """The source fields one transform step reads besides the value it is given: a template's
    placeholders, the fields it joins, the field holding the currency."""
    options = step.get("options") if isinstance(step, dict) else None
    if not isinstance(options, dict):
        return set()
    read = {p for p in options.get("paths") or () if isinstance(p, str) and p}
    if isinstance(options.get("currency_path"), str) and options["currency_path"]:
        read.add(options["currency_path"])
    if isinstance(options.get("template"), str):
        try:
            read |= {part.text for part in _parse_template(options["template"]) if isinstance(part, Path)}
        except TransformError:
            pass  # a broken template reads nothing; the mapper says what is wrong with it
    return read


def _template_problems(options: dict) -> list[str]:
    try:
        _parse_template(options["template"])
    except TransformError as exc:
        return [str(exc)]
    return []


@transform(
    "template",
    label="Fill a template",
    description='Builds text from fields, e.g. "{first_name} {last_name}"; {value} is the current value.',
    options=(
        OptionSpec(
            "template",
            "string",
            "Template",
            required=True,
            help="Field paths in braces, e.g. {customer.name}; missing fields become empty.",
        ),
    ),
    needs_record=True,
    handles_none=True,
    check=_template_problems,
)
def template(value: Any, *, record: dict | None, template: str) -> str:
    pieces = []
    for part in _parse_template(template):
        if isinstance(part, str):
            pieces.append(part)
        else:
            pieces.append(text_of(value if part is None else part.get(record)))
    return "".join(pieces)


@transform(
    "concat",
    label="Combine with other fields",
    description="Joins the current value (if any) and the listed fields with a separator.",
    options=(
        OptionSpec("paths", "string_list", "Fields", required=True, help="e.g. first_name, last_name"),
        OptionSpec("separator", "string", "Separator", default=" "),
        OptionSpec("skip_empty", "boolean", "Skip empty fields", default=True),
    ),
    needs_record=True,
    handles_none=True,
    check=lambda options: _path_problems(options["paths"]),
)
def concat(
    value: Any, *, record: dict | None, paths: list[str], separator: str, skip_empty: bool
) -> str | None:
    found = [value] if value is not None else []
    for text in paths:
        item = compile_path(text).get(record)
        found.extend(item if isinstance(item, list) else [item])
    parts = [text_of(item) for item in found]
    if skip_empty:
        parts = [part for part in parts if part.strip()]
    return separator.join(parts) if parts else None


@transform(
    "split",
    label="Split text",
    description="Cuts text at a separator into a list of trimmed parts, or keeps one part.",
    options=(
        OptionSpec("separator", "string", "Separator", default=","),
        OptionSpec(
            "index", "integer", "Keep part number", help="0 for the first, -1 for the last; empty keeps all."
        ),
    ),
    check=lambda options: [] if options["separator"] else ['"Separator" cannot be empty'],
)
def split(value: Any, *, separator: str, index: int | None) -> Any:
    parts = [part.strip() for part in _require_text(value).split(separator)]
    if index is None:
        return parts
    try:
        return parts[index]
    except IndexError:
        return None


@transform(
    "join",
    label="Join list",
    description="Joins the items of a list into one text, e.g. a, b, c.",
    options=(OptionSpec("separator", "string", "Separator", default=", "),),
    whole_list=True,
)
def join(value: Any, *, separator: str) -> str:
    if not isinstance(value, list):
        return text_of(value)
    return separator.join(text_of(item) for item in value if item is not None)


ARITHMETIC_OPERATIONS = ("add", "subtract", "multiply", "divide", "round", "negate")


def _arithmetic_problems(options: dict) -> list[str]:
    problems = []
    if options["operation"] in ("add", "subtract", "multiply", "divide") and options["operand"] is None:
        problems.append(f'"Number" is required to {options["operation"]}')
    if not 0 <= options["places"] <= 12:
        problems.append('"Decimal places" must be between 0 and 12')
    return problems


@transform(
    "arithmetic",
    label="Calculate",
    description="Adds, subtracts, multiplies or divides by a number, rounds, or flips the sign.",
    options=(
        OptionSpec("operation", "choice", "Operation", required=True, choices=ARITHMETIC_OPERATIONS),
        OptionSpec("operand", "number", "Number"),
        OptionSpec("places", "integer", "Decimal places", default=0, help="For round; halves round up."),
    ),
    check=_arithmetic_problems,
)
def arithmetic(value: Any, *, operation: str, operand: float | None, places: int) -> int | float:
    number = to_decimal(value)
    other = to_decimal(operand) if operand is not None else Decimal(0)
    try:
        if operation == "add":
            result = number + other
        elif operation == "subtract":
            result = number - other
        elif operation == "multiply":
            result = number * other
        elif operation == "divide":
            if not other:
                raise TransformError("cannot divide by zero")
            result = number / other
        elif operation == "round":
            result = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        else:
            result = -number
    except DecimalException:
        raise TransformError(f"{describe_value(value)} is too large to calculate with") from None
    whole_input = isinstance(value, int) or (isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value))
    if whole_input and result == result.to_integral_value():
        return int(result)
    return _to_float(result, value)


@transform(
    "default",
    label="Default value",
    description="Uses a fixed value when the value is missing or empty.",
    options=(OptionSpec("value", "any", "Value", required=True),),
    handles_none=True,
)
def default(current: Any, /, *, value: Any) -> Any:
    if current is None or (isinstance(current, str) and not current.strip()):
        return value
    return current


_MONEY_OPTIONS = (
    OptionSpec("currency", "string", "Currency", help="A fixed ISO code such as EUR."),
    OptionSpec("currency_path", "string", "Currency field", help="Where the record holds its currency code."),
)


# Both money transforms read the currency the same way: fixed, or from a field of the record.
_MONEY: dict[str, Any] = {"options": _MONEY_OPTIONS, "needs_record": True, "check": _currency_problems}


@transform(
    "money_to_minor",
    label="Money to minor units",
    description="Turns an amount into whole minor units (12.50 EUR → 1250, 1250 JPY → 1250); halves round up.",
    **_MONEY,
)
def money_to_minor(
    value: Any, *, record: dict | None, currency: str | None, currency_path: str | None
) -> int:
    code = _currency_of(record, currency, currency_path)
    amount = to_decimal(value, allow_grouping=True)
    try:
        minor = amount.scaleb(currency_exponent(code)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except DecimalException:
        raise TransformError(f"{describe_value(value)} is too large for an amount") from None
    return int(minor)


@transform(
    "minor_to_money",
    label="Minor units to money",
    description="Turns whole minor units back into an amount (1250 EUR → 12.5).",
    **_MONEY,
)
def minor_to_money(
    value: Any, *, record: dict | None, currency: str | None, currency_path: str | None
) -> float:
    code = _currency_of(record, currency, currency_path)
    minor = to_decimal(value)
    if minor != minor.to_integral_value():
        raise TransformError(f"{describe_value(value)} is not a whole number of minor units")
    return _to_float(minor.scaleb(-currency_exponent(code)), value)


@transform("trim", label="Trim spaces", description="Removes spaces at the start and end.")
def trim(value: Any) -> str:
    return _require_text(value).strip()


@transform("upper", label="Upper case", description="ANN@EXAMPLE.COM")
def upper(value: Any) -> str:
    return _require_text(value).upper()


@transform("lower", label="Lower case", description="ann@example.com")
def lower(value: Any) -> str:
    return _require_text(value).lower()


@transform("title", label="Title case", description="Ann Smith")
def title(value: Any) -> str:
    return _require_text(value).title()


@transform(
    "replace",
    label="Find and replace",
    description="Replaces every occurrence of some text with other text.",
    options=(
        OptionSpec("find", "string", "Find", required=True),
        OptionSpec("replace_with", "string", "Replace with", default=""),
    ),
    check=lambda options: [] if options["find"] else ['"Find" cannot be empty'],
)
def replace(value: Any, *, find: str, replace_with: str) -> str:
    return _require_text(value).replace(find, replace_with)


@transform("first", label="First item", description="Keeps the first item of a list.", whole_list=True)
def first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


@transform(
    "count",
    label="Count items",
    description="The number of items in a list (0 when missing).",
    whole_list=True,
    handles_none=True,
)
def count(value: Any) -> int:
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1
