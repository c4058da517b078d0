"""Typed settings for connectors and sign-in methods.

A connector (or a sign-in method) declares its settings as a dataclass whose fields are made with
`setting(...)`: default, label, help and checks. The values live in one JSON field of System; code
reads them with `config_load`, the model refuses bad ones with `config_problems`, and the system
form renders one input per setting from the same declaration, so a new connector needs no form or
template change.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from typing import Any, get_type_hints

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator

from common.paths import PathError, compile_path
from common.urlpaths import relative_path

TYPE_WORDS = {str: "text", int: "a whole number", bool: "true or false"}

header_name = RegexValidator(
    r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", "A header name has letters, digits and hyphens only, e.g. X-Api-Key."
)
url_path = RegexValidator(r"^/(?!/)\S*$", "Start the path with “/”, without spaces, e.g. /deals.")
query_parameter = RegexValidator(
    r"^[A-Za-z0-9_.\-\[\]]+$", "Use a parameter name such as limit or page[size]."
)
_https_url = URLValidator(schemes=["http", "https"])


def json_path(value: str) -> None:
    """A path into a JSON answer, such as data or meta.next_page."""
    try:
        compile_path(value)
    except PathError as exc:
        raise ValidationError(str(exc)) from None


def url_or_path(value: str) -> None:
    """A full http(s) URL, or a path on the system's base URL."""
    if value.startswith("/") and not value.startswith("//"):
        relative_path(value)
        return
    try:
        _https_url(value)
    except ValidationError:
        raise ValidationError("Enter a full https:// address or a path starting with “/”.") from None


@dataclass(frozen=True)
class Setting:
    """How one setting shows in the system form and what it accepts."""

    label: str
    help: str = ""
    choices: tuple[str, ...] = ()
    validators: tuple[Callable[[Any], None], ...] = ()
    required: str = ""  # the message when it is left empty; "" means it may be empty
    input_name: str = ""  # the form input's name, when it is not the setting's own
    advanced: bool = False  # rarely changed: the form tucks it under "More settings"


def setting(
    default: Any,
    *,
    label: str,
    help: str = "",
    choices: tuple[str, ...] = (),
    validators: tuple[Callable[[Any], None], ...] = (),
    required: str = "",
    input_name: str = "",
    advanced: bool = False,
) -> Any:
    """A dataclass field that is also a declared setting."""
    declared = Setting(label, help, tuple(choices), tuple(validators), required, input_name, advanced)
    return field(default=default, metadata={"setting": declared})


def answer_path_setting(default: str, *, label: str, help: str) -> Any:
    """A setting that names where in a JSON answer something is kept, tucked under "More"."""
    return setting(default, label=label, help=help, validators=(json_path,), advanced=True)


def query_parameter_setting(default: str, *, label: str, help: str) -> Any:
    """A setting that names a query parameter (e.g. limit or page[size]), tucked under "More"."""
    return setting(
        default,
        label=label,
        help=help,
        required=f"Name the parameter, e.g. {default}.",
        validators=(query_parameter,),
        advanced=True,
    )


@dataclass(frozen=True)
class Declared:
    """One setting of a config class: its key in the JSON, its form input, type and default."""

    key: str
    name: str
    type: type
    default: Any
    setting: Setting


@cache
def declared(config: type) -> list[Declared]:
    """A settings class's declared settings (read once per class: connectors load settings per call)."""
    if not is_dataclass(config):
        raise TypeError(f"{config.__name__} must be a dataclass of settings")
    hints = get_type_hints(config)
    found = []
    for item in fields(config):
        meta = item.metadata.get("setting")
        if meta is None or hints[item.name] not in TYPE_WORDS:
            raise TypeError(
                f"{config.__name__}.{item.name}: declare it with setting(...) as str, int or bool"
            )
        found.append(Declared(item.name, meta.input_name or item.name, hints[item.name], item.default, meta))
    return found


def config_load[C](config: type[C], values: Any) -> C:
    """The typed settings from stored JSON. Unknown keys and values of the wrong type are passed over
    (the model refuses them on save), and an empty required setting takes its default, so a
    connector always runs on something sensible."""
    stored = values if isinstance(values, dict) else {}
    chosen = {}
    for item in declared(config):
        value = stored.get(item.key)
        if _fits(item, value) and not (item.setting.required and value == ""):
            chosen[item.key] = value
    return config(**chosen)


def config_problems(config: type, values: Any) -> dict[str, list[str]]:
    """What is wrong with these stored settings, by key; empty when nothing is."""
    if not isinstance(values, dict):
        return {"": ["must be a mapping of settings"]}
    known = {item.key: item for item in declared(config)}
    problems = {
        str(key): [f"unknown setting; known: {', '.join(known) or 'none'}"]
        for key in values
        if key not in known
    }
    for key, item in known.items():
        problem = _problem(item, values.get(key, item.default))
        if problem:
            problems[key] = [problem]
    return problems


def problems_in_words(problems: dict[str, list[str]]) -> list[str]:
    return [f"{key}: {message}" if key else message for key, found in problems.items() for message in found]


def _fits(item: Declared, value: Any) -> bool:
    return isinstance(value, item.type) and not (item.type is int and isinstance(value, bool))


def _problem(item: Declared, value: Any) -> str:
    if not _fits(item, value):
        return f"must be {TYPE_WORDS[item.type]}"
    if value == "":
        return item.setting.required
    if item.setting.choices and value not in item.setting.choices:
        return f"Choose one of {', '.join(item.setting.choices)}."
    for validator in item.setting.validators:
        try:
            validator(value)
        except ValidationError as exc:
            return " ".join(exc.messages)
    return ""
