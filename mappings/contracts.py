"""Contracts on the way out: what a target accepts, checked before anything is sent to it.

A target's contract is its data model's fields (types, required, formats, allowed values,
lengths) and, when the model came from an OpenAPI document, that document's operations: the
request's path must exist, its method be allowed there and its body fit the operation's request
schema. Every problem names the mapping rule that produced the value at fault. The delivery
path and the mapper's preview both call `Contract.check`, so they give the same verdict.
"""

import copy
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from common.paths import compile_path
from mappings.engine import describe_rule
from mappings.schema import (
    _MISSING,
    FORMAT_WORDS,
    TYPE_WORDS,
    FieldSpec,
    _has_type,
    _locate,
    _shown,
    is_date_text,
    request_body_schema,
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_POSITION = re.compile(r"\[[0-9]+\]")
MAX_REPORTED = 20  # problems named per record; a record breaking more is reported by its first ones


def format_ok(kind: str, value: Any) -> bool:
    """Whether text is written in one of FORMATS; a format the hub does not know accepts anything."""
    if not isinstance(value, str):
        return True  # the type check speaks for values that are not text
    if kind == "email":
        return bool(_EMAIL.fullmatch(value))
    if kind == "date":
        return is_date_text(value)
    if kind == "date-time":
        if not _DATETIME.fullmatch(value):
            return False
        try:
            datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return False
        return True
    if kind == "uri":
        return bool(_URI.fullmatch(value))
    if kind == "uuid":
        try:
            return len(value) == 36 and str(uuid.UUID(value)) == value.lower()
        except ValueError:
            return False
    return True


FORMAT_CHECKER = FormatChecker(formats=())
for _name in FORMAT_WORDS:
    FORMAT_CHECKER.checks(_name)(lambda value, _kind=_name: format_ok(_kind, value))


@dataclass(frozen=True)
class Violation:
    """One way a mapped record breaks its target's contract."""

    field: str  # the field as the data model writes it: properties.email, lines[].sku
    where: str  # the place in the record: lines[2].sku
    rule: int | None  # the position (0-based) of the mapping rule at fault; None when none is
    problem: str  # the problem alone, shown beside its rule in the mapper
    message: str  # the whole sentence, naming the rule


class RuleIndex:
    """Which mapping rule writes which target field, to name the one at fault."""

    def __init__(self, rules: Any) -> None:
        self.rules: dict[str, tuple[int, str]] = {}
        for index, rule in enumerate(rules if isinstance(rules, list) else ()):
            target = rule.get("target") if isinstance(rule, dict) else None
            if isinstance(target, str) and target:
                self.rules.setdefault(_POSITION.sub("[]", target), (index, describe_rule(rule)))

    def writer(self, field: str) -> tuple[int, str] | None:
        """The rule that writes `field`, or the one writing the object or list it is in."""
        path = field
        while path:
            if path in self.rules:
                return self.rules[path]
            cut = max(path.rfind("."), path.rfind("[]"))
            path = path[:cut] if cut > 0 else ""
        return None

    def violation(self, where: str, *, produced: Any = _MISSING, problem: str) -> Violation:
        """A violation at `where`; `produced` is the value the rule gave (none: it gave nothing)."""
        field = _POSITION.sub("[]", where)
        writer = self.writer(field)
        if writer is None:
            said = (
                f'"{where}" {problem}'
                if produced is _MISSING
                else f'"{where}" is {_shown(produced)}, {problem}'
            )
            return Violation(field, where, None, problem, said)
        index, described = writer
        given = "nothing" if produced is _MISSING else _shown(produced)
        return Violation(
            field,
            where,
            index,
            f"produced {given}, {problem}",
            f"rule {index + 1}, {described}, produced {given}, {problem}",
        )


def missing_problem(where: str, rules: RuleIndex, by: str = "") -> Violation:
    writer = rules.writer(_POSITION.sub("[]", where))
    required = (
        f'but "{where}" is required{by}' if writer else f"is required{by}, but no mapping rule fills it"
    )
    return rules.violation(where, problem=required)


@dataclass(frozen=True)
class Request:
    """The call a delivery would make: method, path on the system's base URL, and JSON body."""

    method: str
    path: str
    body: Any


class Contract:
    """What one target model accepts; built once per model version (contract_for) and shared."""

    def __init__(self, fields: tuple[FieldSpec, ...], api: "ApiContract | None" = None) -> None:
        self.fields = [(spec, compile_path(spec.path).segments) for spec in fields]
        self.api = api

    def check(
        self, record: Any, rules: RuleIndex, request: Request | None = None, base_url: str = ""
    ) -> list[Violation]:
        """Every way `record` (and the request carrying it) breaks the contract, each naming its rule."""
        found = self.check_fields(record, rules)
        if request is not None and self.api is not None:
            seen = {violation.where for violation in found}
            found += [v for v in self.api.check(request, base_url, rules) if v.where not in seen]
        return found[:MAX_REPORTED]

    def check_fields(self, record: Any, rules: RuleIndex) -> list[Violation]:
        found: list[Violation] = []
        for spec, segments in self.fields:
            for where, value in _locate(record, segments):
                if value is _MISSING or value is None:
                    if spec.required:
                        found.append(missing_problem(where, rules))
                    continue
                problem = _value_problem(spec, value)
                if problem:
                    found.append(rules.violation(where, produced=value, problem=problem))
                if len(found) >= MAX_REPORTED:
                    return found
        return found


def _value_problem(spec: FieldSpec, value: Any) -> str:
    if not _has_type(value, spec.type):
        return f"which is not {TYPE_WORDS.get(spec.type, spec.type)}"
    if spec.format and not format_ok(spec.format, value):
        return f"which is not {FORMAT_WORDS.get(spec.format, spec.format)}"
    if spec.enum and value not in spec.enum:
        allowed = ", ".join(str(v) for v in spec.enum[:12]) + (", …" if len(spec.enum) > 12 else "")
        return f"which is not one of the allowed values ({allowed})"
    if isinstance(value, str):
        if spec.max_length is not None and len(value) > spec.max_length:
            return f"which is longer than the {spec.max_length} characters allowed"
        if spec.min_length is not None and len(value) < spec.min_length:
            return f"which is shorter than the {spec.min_length} characters needed"
    return ""


# --------------------------------------------------------------------------------------------------
# The operations of an OpenAPI document
# --------------------------------------------------------------------------------------------------

DOCUMENT_URI = "urn:hub:api-document"


class ApiContract:
    """The operations of one API document, and a compiled validator per operation's request body
    (made on first use, kept while the model's version stands)."""

    def __init__(self, document: dict, operation: str = "") -> None:
        self.operation = operation  # the operation the model was imported from, e.g. POST /contacts
        version = str(document.get("openapi") or "")
        self.modern = version.startswith("3.1")
        self.document = document if self.modern else _as_draft4(document)
        resource = Resource.from_contents(
            self.document, default_specification=DRAFT202012 if self.modern else DRAFT4
        )
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        prefix = _server_prefixes(document)
        self.routes: list[tuple[re.Pattern, str, set[str]]] = []
        for path, item in (document.get("paths") or {}).items():
            if isinstance(path, str) and isinstance(item, dict):
                methods = {
                    m.upper()
                    for m in item
                    if m in ("get", "put", "post", "delete", "patch", "head", "options")
                }
                template = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path.rstrip("/") or "/"))
                self.routes.append((re.compile(f"(?:{prefix}){template}/?"), path, methods))
        # Fixed paths before templated ones: /contacts/search is not /contacts/{id}.
        self.routes.sort(key=lambda route: route[1].count("{"))
        self.validators: dict[tuple[str, str], Any] = {}
        self.lock = threading.Lock()

    def check(self, request: Request, base_url: str, rules: RuleIndex) -> list[Violation]:
        full = urlsplit(base_url).path.rstrip("/") + "/" + request.path.split("?", 1)[0].lstrip("/")
        method = request.method.upper()
        route = next((r for r in self.routes if r[0].fullmatch(full)), None)
        if route is None:
            problem = f"there is no path {full} in it, so {method} {full} would fail"
            return [Violation("", "", None, problem, problem)]
        _, path, methods = route
        if method not in methods:
            allowed = ", ".join(sorted(methods)) or "nothing"
            problem = f"it allows {allowed} on {path}, not {method}"
            return [Violation("", "", None, problem, problem)]
        validator = self.validator(path, method)
        if validator is None:
            return []
        operation = f"{method} {path}"
        found: list[Violation] = []
        for error in sorted(validator.iter_errors(request.body), key=lambda e: _dotted(e.absolute_path)):
            found.extend(_explained(error, rules, operation))
            if len(found) >= MAX_REPORTED:
                break
        return found

    def validator(self, path: str, method: str):
        key = (path, method)
        if key not in self.validators:
            with self.lock:
                schema = request_body_schema(self.document, path, method)
                if schema is None:
                    compiled = None
                else:
                    root = {"$ref": f"{DOCUMENT_URI}#{_pointer_of(self.document, schema)}"}
                    kind = Draft202012Validator if self.modern else Draft4Validator
                    compiled = kind(root, registry=self.registry, format_checker=FORMAT_CHECKER)
                self.validators[key] = compiled
        return self.validators[key]


def _pointer_of(document: dict, target: dict) -> str:
    """The JSON pointer of `target` (an object inside `document`), so its local $refs resolve."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, pointer = stack.pop()
        if node is target:
            return pointer
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"))
    return ""


def _server_prefixes(document: dict) -> str:
    """A pattern of the path prefixes the document's servers put before its paths ("" among them)."""
    prefixes = {""}
    servers = document.get("servers")
    for server in servers if isinstance(servers, list) else ():
        url = str(server.get("url") or "") if isinstance(server, dict) else ""
        path = urlsplit(url).path if "://" in url else url
        if "{" not in path:
            prefixes.add(path.rstrip("/"))
    if isinstance(document.get("basePath"), str):
        prefixes.add(document["basePath"].rstrip("/"))
    return "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))


def _as_draft4(document: dict) -> dict:
    """An OpenAPI 3.0 / Swagger 2 document with its schemas as JSON Schema draft 4 reads them:
    `nullable: true` allows null, and read-only properties are not required in a request."""
    converted = copy.deepcopy(document)
    stack: list[Any] = [converted]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        properties = node.get("properties")
        if isinstance(properties, dict) and isinstance(node.get("required"), list):
            node["required"] = [
                name
                for name in node["required"]
                if not (isinstance(properties.get(name), dict) and properties[name].get("readOnly") is True)
            ]
        stack.extend(node.values())
    return converted


def _dotted(parts) -> str:
    where = ""
    for part in parts:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where


def _explained(error, rules: RuleIndex, operation: str) -> list[Violation]:
    """A JSON Schema error in the words of a violation, naming the rule at fault."""
    where = _dotted(error.absolute_path)
    by = f" by {operation}"
    kind, instance = error.validator, error.instance
    if kind == "required" and isinstance(instance, dict):
        names = [name for name in error.validator_value if name not in instance]
        return [missing_problem(_dotted([*error.absolute_path, name]), rules, by) for name in names]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        return [
            rules.violation(
                _dotted([*error.absolute_path, name]),
                produced=instance[name],
                problem=f"but {operation} accepts no such field",
            )
            for name in instance
            if name not in known
        ]
    words = {
        "type": lambda: f"which is not {_json_type_words(error.validator_value)}",
        "format": lambda: f"which is not {FORMAT_WORDS.get(error.validator_value, error.validator_value)}",
        "enum": lambda: (
            "which is not one of the allowed values ("
            + ", ".join(str(v) for v in error.validator_value[:12])
            + ")"
        ),
        "maxLength": lambda: f"which is longer than the {error.validator_value} characters allowed",
        "minLength": lambda: f"which is shorter than the {error.validator_value} characters needed",
        "pattern": lambda: f"which does not match the pattern {error.validator_value}",
        "maximum": lambda: f"which is more than {error.validator_value}",
        "minimum": lambda: f"which is less than {error.validator_value}",
    }
    problem = words[kind]() if kind in words else f"which {operation} refuses: {error.message[:200]}"
    if not where:
        return [Violation("", "", None, f"the body {problem}", f"the body {problem}")]
    return [rules.violation(where, produced=instance, problem=problem)]


def _json_type_words(kind: Any) -> str:
    names = kind if isinstance(kind, list) else [kind]
    words = {
        "integer": "integer",
        "number": "number",
        "string": "string",
        "boolean": "boolean",
        "object": "object",
        "array": "array",
    }
    shown = [TYPE_WORDS.get(words.get(name, ""), str(name)) for name in names if name != "null"]
    return " or ".join(shown) or "null"


# --------------------------------------------------------------------------------------------------
# One contract per model version, shared by every delivery
# --------------------------------------------------------------------------------------------------

_CONTRACTS: "OrderedDict[tuple, Contract]" = OrderedDict()
_APIS: "OrderedDict[tuple, ApiContract | None]" = OrderedDict()
_CACHE_SIZE = 256
_API_CACHE_SIZE = 32  # each keeps its document (up to LIMITS.openapi_bytes) and its validators
_cache_lock = threading.Lock()


def contract_for(model, fields: list[FieldSpec] | None = None) -> Contract:
    """The contract of a data model as it stands, compiled once and kept while it does not change:
    its document's validators by (model, last change), its fields by their content."""
    specs = tuple(fields if fields is not None else model.field_specs())
    version = (model.pk, model.updated_at)
    key = (*version, hash(specs))
    with _cache_lock:
        found = _CONTRACTS.get(key)
        if found is not None:
            _CONTRACTS.move_to_end(key)
            return found
    api = _api_for(model, version)
    contract = Contract(specs, api)
    with _cache_lock:
        _CONTRACTS[key] = contract
        while len(_CONTRACTS) > _CACHE_SIZE:
            _CONTRACTS.popitem(last=False)
    return contract


def _api_for(model, version: tuple) -> ApiContract | None:
    with _cache_lock:
        if version in _APIS:
            return _APIS[version]
    document = model.api_document if model.api_operation else None
    api = ApiContract(document, model.api_operation) if isinstance(document, dict) else None
    with _cache_lock:
        _APIS[version] = api
        while len(_APIS) > _API_CACHE_SIZE:
            _APIS.popitem(last=False)
    return api


def violations_text(violations: list[Violation]) -> str:
    return "; ".join(violation.message for violation in violations)
