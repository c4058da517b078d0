"""Record shapes: data-model fields, inference, OpenAPI import, validation and drift."""

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from difflib import SequenceMatcher
from typing import Any
from urllib.parse import urlsplit

import yaml

from common import strictjson, strictyaml
from common.limits import LIMITS
from common.paths import Segment, _kind_of, compile_path

# --------------------------------------------------------------------------------------------------
# Fields of a data model
# --------------------------------------------------------------------------------------------------

FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "object", "array")
TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time (ISO 8601)",
    "object": "an object",
    "array": "a list",
}

# The formats the hub checks a value against before sending it (OpenAPI's names).
FORMATS = ("email", "date", "date-time", "uri", "uuid")
FORMAT_WORDS = {
    "email": "an email address",
    "date": "a date (YYYY-MM-DD)",
    "date-time": "a date and time (ISO 8601)",
    "uri": "a web address (URI)",
    "uuid": "a UUID",
}
ENUM_MAX = 500  # allowed values kept per field; an enumeration longer than that is not checked

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)


class SchemaError(ValueError):
    """A document or schema that cannot be read, explained in plain language."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a data model; item fields of a list of objects are written "lines[].sku"."""

    path: str
    type: str
    required: bool = False
    description: str = ""
    unit: str = ""
    # What the target accepts beyond the type (from its API document, or set by an admin): a
    # format (one of FORMATS), the allowed values, and the shortest and longest text.
    format: str = ""
    enum: tuple = ()
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Issue:
    """A way a record does not fit its data model."""

    path: str
    kind: str  # "missing_required" | "wrong_type" | "unknown_field"
    message: str


def is_date_text(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_datetime_text(value: Any) -> bool:
    """ISO 8601 date-time text (a bare date is accepted too)."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------------

MINOR_UNITS = "in cents (minor units)"
_MINOR_WORDS = {"minor", "cents", "cent", "pence", "penny"}
_MONEY_WORDS = {
    "amount",
    "total",
    "subtotal",
    "price",
    "fee",
    "tax",
    "balance",
    "net",
    "gross",
    "paid",
    "due",
}


def guess_unit(path: str, kind: str, paths: list[str] | tuple[str, ...] = ()) -> str:
    """The unit a field's name and type give away; "" when nothing does.

    Money as a whole number is in minor units: "total_minor", "amount_cents", or an integer
    "amount" beside a "currency" field (how payment APIs send 12.50 EUR: 1250).
    """
    if kind != "integer":
        return ""
    words = set(
        re.split(r"[^a-z0-9]+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", path.rsplit(".", 1)[-1]).lower())
    )
    if words & _MINOR_WORDS:
        return MINOR_UNITS
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    siblings = {
        other.rsplit(".", 1)[-1].lower()
        for other in paths
        if (other.rsplit(".", 1)[0] if "." in other else "") == parent
    }
    if words & _MONEY_WORDS and siblings & {"currency", "currency_code"}:
        return MINOR_UNITS
    return ""


# --------------------------------------------------------------------------------------------------
# Inference from a sample record
# --------------------------------------------------------------------------------------------------


def infer_fields(sample: dict) -> list[FieldSpec]:
    """Guess the fields of a data model from one sample record, in the sample's order."""
    if not isinstance(sample, dict):
        raise SchemaError("the sample must be a JSON object")
    found: dict[str, tuple[str, bool]] = {}
    _infer_object([sample], "", found)
    return [FieldSpec(path, kind, required) for path, (kind, required) in found.items()]


def _infer_object(objects: list[dict], prefix: str, found: dict[str, tuple[str, bool]]) -> None:
    """Record the fields of several objects of the same shape (the items of one list)."""
    keys = list(dict.fromkeys(key for obj in objects for key in obj))
    for key in keys:
        path = f"{prefix}.{key}" if prefix else key
        values = [obj.get(key) for obj in objects]
        present = [value for value in values if value is not None]
        kind = _merge_types([_infer_type(value) for value in present])
        found[path] = (kind, len(present) == len(objects))
        nested, nested_path = _nested_objects(kind, present, path)
        if nested:
            _infer_object(nested, nested_path, found)


def _nested_objects(kind: str, values: list, path: str) -> tuple[list[dict], str]:
    """The objects a field holds (itself, or its list's items) and the path they live under."""
    if kind == "object":
        return [value for value in values if isinstance(value, dict)], path
    if kind == "array":
        items = [item for value in values if isinstance(value, list) for item in value]
        return [item for item in items if isinstance(item, dict)], f"{path}[]"
    return [], path


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str) and is_date_text(value):
        return "date"
    if isinstance(value, str) and _DATETIME.fullmatch(value) and is_datetime_text(value):
        return "datetime"
    return "string"


def _merge_types(kinds: list[str]) -> str:
    distinct = set(kinds)
    if not distinct:
        return "string"  # only nulls seen: unknown, the admin decides
    if len(distinct) == 1:
        return kinds[0]
    if distinct == {"integer", "number"}:
        return "number"
    return "string"


# --------------------------------------------------------------------------------------------------
# Required on create
# --------------------------------------------------------------------------------------------------

# A sample shows what a system *answers*; what it fills in itself when it creates a record (its id,
# its timestamps, links and versions) must not be asked of a create. Names are compared in
# snake_case, so createdAt and created_at are one.
OWN_ID_NAMES = frozenset({"id", "_id", "uuid", "guid", "pk"})
TIMESTAMP_NAMES = frozenset(
    {"created", "updated", "modified", "deleted", "last_modified", "date_created", "date_updated",
     "date_modified", "created_on", "updated_on", "modified_on", "timestamp"}
)  # fmt: skip
READ_ONLY_NAMES = frozenset(
    {"etag", "version", "revision", "rev", "links", "href", "self", "created_by", "updated_by",
     "modified_by", "object"}
)  # fmt: skip
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def generated_by_target(path: str, *, record_names: Iterable[str] = ()) -> bool:
    """Whether a system most likely fills in this field itself when it creates a record, so a create
    need not send it: the record's own id (`id`, `uuid`, `contact_id` of a contact), timestamps
    (`created_at`, `updatedAt`, any `*_at`) and read-only-looking bookkeeping (`etag`, `_links`).

    `record_names` are what the record is called ("contact" for /contacts), to tell the record's
    own `contact_id` from a `customer_id` that points at another record."""
    *parents, leaf = path.replace("[]", "").split(".")
    name = _CAMEL_HUMP.sub("_", leaf).lower()
    if name.startswith("_") and not parents:
        return True  # _links, _meta, _etag: the API's own additions
    if name.endswith("_at") or name in TIMESTAMP_NAMES or name in READ_ONLY_NAMES:
        return True
    if parents:  # customer.id names the customer a new record points at: the admin decides
        return False
    own = {f"{record}_{suffix}" for record in record_names for suffix in ("id", "uuid", "key")}
    return name in OWN_ID_NAMES or name in own


def record_names(*words: str) -> list[str]:
    """What a record is called, in snake_case and singular, from a model name or a resource path:
    ("Contact", "/v1/contacts") -> ["contact"]; "companies" gives "company"."""
    names: list[str] = []
    for word in words:
        last = (word or "").split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        name = _CAMEL_HUMP.sub("_", last).lower().replace("-", "_").replace(" ", "_")
        if name.endswith("ies"):
            name = name[:-3] + "y"
        elif name.endswith("s") and not name.endswith("ss"):
            name = name[:-1]
        if name and name not in names:
            names.append(name)
    return names


def required_on_create(fields: list[FieldSpec], *, record_names: Iterable[str] = ()) -> list[FieldSpec]:
    """The fields with "required" taken off where the target fills the field in itself."""
    names = list(record_names)
    return [
        replace(spec, required=False)
        if spec.required and generated_by_target(spec.path, record_names=names)
        else spec
        for spec in fields
    ]


# --------------------------------------------------------------------------------------------------
# OpenAPI / Swagger
# --------------------------------------------------------------------------------------------------


def openapi_schema_names(document: str | dict) -> list[str]:
    """Names of the schemas an OpenAPI 3 or Swagger 2 document defines, in document order."""
    return list(_schemas(_load_document(document)))


def fields_from_openapi(document: str | dict, schema_name: str) -> list[FieldSpec]:
    """The fields of one named schema, with local $refs, allOf, nesting and required flags resolved."""
    doc = _load_document(document)
    schemas = _schemas(doc)
    if schema_name not in schemas:
        available = ", ".join(schemas) or "none"
        raise SchemaError(f'the document has no schema "{schema_name}" (available: {available})')
    # The schema's own reference, so a property that refers back to it is not read again.
    home = (
        "#/components/schemas/" if schemas is doc.get("components", {}).get("schemas") else "#/definitions/"
    )
    own = home + schema_name.replace("~", "~0").replace("/", "~1")
    return _SchemaReader(doc, schema_name).object_fields(schemas[schema_name], "", 0, frozenset({own}))


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA = re.compile(r"application/(.+\+)?json|\*/\*", re.IGNORECASE)


@dataclass(frozen=True)
class ApiOperation:
    """One operation of an API document: "POST /crm/v3/objects/contacts", "Create a contact"."""

    method: str  # upper case
    path: str
    summary: str = ""

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def label(self) -> str:
        return f"{self.key} — {self.summary}" if self.summary else self.key


@dataclass(frozen=True)
class OperationImport:
    """What choosing an operation sets on a new data model."""

    operation: ApiOperation
    fields: list[FieldSpec]  # the request body's fields, then those only the answer has (not required)
    generated: list[str]  # the fields the target fills in itself: read-only, or only in its answer
    id_path: str  # where the answer keeps the record's id ("" when the document does not say)
    server_path: str  # the path of the document's server URL ("/v3" of https://api.example.com/v3)
    name: str  # what the record is called, from the path: "Contact" for /contacts


def openapi_operations(document: str | dict) -> list[ApiOperation]:
    """The operations a document describes, in its order."""
    doc = _load_document(document)
    paths = doc.get("paths")
    found: list[ApiOperation] = []
    for path, item in (paths if isinstance(paths, dict) else {}).items():
        if not isinstance(item, dict) or not isinstance(path, str):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                summary = operation.get("summary") or operation.get("operationId") or ""
                found.append(ApiOperation(method.upper(), path, str(summary).strip()[:120]))
    return found


def fields_from_openapi_operation(document: str | dict, key: str) -> OperationImport:
    """A data model from one operation ("POST /contacts"): the body's fields, the answer's id and
    the fields the target fills in itself (read-only, or only in its answer), which are not required."""
    doc = _load_document(document)
    operation = next((op for op in openapi_operations(doc) if op.key == key), None)
    if operation is None:
        raise SchemaError(f'the document has no operation "{key}"')
    spec = doc["paths"][operation.path][operation.method.lower()]
    body_schema = request_body_schema(doc, operation.path, operation.method)
    answer_schema = answer_body_schema(doc, spec)
    body_reader = _SchemaReader(doc, operation.key)
    body = body_reader.object_fields(body_schema, "", 0, frozenset()) if body_schema is not None else []
    answer = (
        _SchemaReader(doc, operation.key).object_fields(answer_schema, "", 0, frozenset())
        if answer_schema is not None
        else []
    )
    if not body and not answer:
        raise SchemaError(
            f"{operation.key} has no JSON request body or answer with fields; choose another one"
        )
    sent = {field.path for field in body}
    only_answered = [
        replace(
            field, required=False, description=field.description or "Set by the system (only in its answers)"
        )
        for field in answer
        if field.path not in sent
    ]
    generated = [*body_reader.read_only, *(field.path for field in only_answered)]
    answered = [field.path for field in answer]
    id_path = next((path for path in sorted(answered, key=lambda p: p.count(".")) if _is_own_id(path)), "")
    names = record_names(re.sub(r"(/\{[^}]*\})+/?$", "", operation.path))
    return OperationImport(
        operation=operation,
        fields=[*body, *only_answered],
        generated=generated,
        id_path=id_path,
        server_path=server_path(doc),
        name=" ".join(names).replace("_", " ").title() if names else operation.path.strip("/"),
    )


def _is_own_id(path: str) -> bool:
    *parents, leaf = path.split(".")
    return leaf.lower() in OWN_ID_NAMES and (not parents or parents == ["data"]) and "[]" not in path


def server_path(doc: dict) -> str:
    """The path part of the document's first server URL, e.g. "/v3" (Swagger 2: its basePath)."""
    servers = doc.get("servers")
    url = ""
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        url = str(servers[0].get("url") or "")
    elif isinstance(doc.get("basePath"), str):
        url = doc["basePath"]
    path = urlsplit(url).path if "://" in url else url
    return "" if "{" in path else path.rstrip("/")


def request_body_schema(doc: dict, path: str, method: str) -> dict | None:
    """The JSON schema of an operation's request body (OpenAPI 3 requestBody, Swagger 2 body
    parameter); None when it takes none."""
    item = doc.get("paths", {}).get(path) or {}
    spec = item.get(method.lower()) if isinstance(item, dict) else None
    if not isinstance(spec, dict):
        return None
    if "requestBody" in spec:
        return _json_content_schema(doc, spec["requestBody"])
    parameters = [*(item.get("parameters") or ()), *(spec.get("parameters") or ())]
    for parameter in parameters:
        parameter = _followed(doc, parameter)
        if parameter.get("in") == "body" and isinstance(parameter.get("schema"), dict):
            return parameter["schema"]
    return None


def answer_body_schema(doc: dict, spec: dict) -> dict | None:
    """The JSON schema of an operation's success answer (201, 200, then any 2xx)."""
    responses = spec.get("responses")
    if not isinstance(responses, dict):
        return None
    by_code = {str(code).upper(): answer for code, answer in responses.items()}  # YAML reads 201 as a number
    ordered = [c for c in ("201", "200") if c in by_code] + [c for c in by_code if c.startswith("2")]
    for code in ordered:
        answer = _followed(doc, by_code[code])
        if isinstance(answer.get("schema"), dict):  # Swagger 2
            return answer["schema"]
        schema = _json_content_schema(doc, answer)
        if schema is not None:
            return schema
    return None


def _json_content_schema(doc: dict, holder: Any) -> dict | None:
    content = _followed(doc, holder).get("content")
    if not isinstance(content, dict):
        return None
    for media, entry in content.items():
        if JSON_MEDIA.fullmatch(str(media).split(";")[0].strip()) and isinstance(entry, dict):
            schema = entry.get("schema")
            return schema if isinstance(schema, dict) else None
    return None


def _followed(doc: dict, node: Any) -> dict:
    """A requestBody, response or parameter, with its $ref (to components) followed."""
    for _ in range(LIMITS.openapi_ref_chain):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            break
        if not node["$ref"].startswith("#/"):
            return {}
        node = _pointer(doc, node["$ref"])
    return node if isinstance(node, dict) else {}


def _load_document(document: str | dict) -> dict:
    if isinstance(document, dict):
        return document
    if not isinstance(document, str):
        raise SchemaError("the document must be JSON or YAML text")
    try:
        data = strictjson.loads(document)
    except strictjson.JSONInputError:
        try:
            data = strictyaml.loads(document)
        except strictyaml.YAMLInputError as exc:
            raise SchemaError(f"the document cannot be read: {exc.located}") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" near line {where.line + 1}" if where is not None else ""
            raise SchemaError(f"the document is neither valid JSON nor valid YAML{line}") from None
    if not isinstance(data, dict):
        raise SchemaError("the document must be a JSON or YAML object")
    return data


def _schemas(doc: dict) -> dict:
    components = doc.get("components")
    if isinstance(components, dict) and isinstance(components.get("schemas"), dict):
        return components["schemas"]
    if isinstance(doc.get("definitions"), dict):
        return doc["definitions"]
    raise SchemaError("no schemas found: expected components.schemas (OpenAPI 3) or definitions (Swagger 2)")


COMBINERS = (("allOf", True), ("oneOf", False), ("anyOf", False))  # (key, its parts' required apply)


class _SchemaReader:
    """Reads one schema's fields within the limits. A schema that refers to itself (directly or
    through others) is read again down to openapi_depth levels, as a record's parent.parent.name
    may be real; the fields and $refs one schema expands to are counted, so a 300-byte document
    that refers to itself seven times cannot stand for a million fields."""

    def __init__(self, doc: dict, name: str) -> None:
        self.doc = doc
        self.name = name
        self.fields = 0
        self.refs = 0
        self.cycle = ""  # the first reference back to a schema being read, named in a refusal
        self.read_only: list[str] = []  # the paths the schema says only the server sets

    def object_fields(self, schema: Any, prefix: str, depth: int, inside: frozenset[str]) -> list[FieldSpec]:
        resolved, followed = self.resolve(schema, frozenset())
        inside |= followed
        required = set(resolved.get("required") or ())
        fields: list[FieldSpec] = []
        for name, prop in (resolved.get("properties") or {}).items():
            path = f"{prefix}.{name}" if prefix else name
            fields.extend(self.property_fields(prop, path, name in required, depth, inside))
        return fields

    def property_fields(
        self, prop: Any, path: str, required: bool, depth: int, inside: frozenset[str]
    ) -> list[FieldSpec]:
        self.fields += 1
        back = _ref_of(prop)
        if back in inside:  # a category's parent category: read again until openapi_depth
            self.cycle = self.cycle or back
        if self.fields > LIMITS.openapi_fields:
            through = f" ({self.cycle} refers back to itself)" if self.cycle else ""
            raise SchemaError(
                f'the schema "{self.name}" expands to more than {LIMITS.openapi_fields:,} fields{through}; '
                "choose a smaller schema"
            )
        resolved, followed = self.resolve(prop, frozenset())
        inner = inside | followed
        site = prop if isinstance(prop, dict) else {}
        description = str(
            site.get("description") or resolved.get("description") or resolved.get("title") or ""
        )
        kind = _openapi_type(resolved)
        read_only = bool(site.get("readOnly") or resolved.get("readOnly"))  # the server sets it
        if read_only:
            self.read_only.append(path)
        fields = [FieldSpec(path, kind, required and not read_only, description, **_constraints(resolved))]
        if depth + 1 >= LIMITS.openapi_depth:
            return fields
        if kind == "object":
            fields.extend(self.object_fields(resolved, path, depth + 1, inner))
        elif kind == "array":
            items, followed = self.resolve(resolved.get("items") or {}, frozenset())
            inner |= followed
            if _openapi_type(items) == "object":
                fields.extend(self.object_fields(items, f"{path}[]", depth + 1, inner))
        return fields

    def resolve(self, schema: Any, seen: frozenset[str]) -> tuple[dict, frozenset[str]]:
        """Follow local $refs and merge allOf/oneOf/anyOf parts into one flat schema; also the refs
        followed (a ref already in `seen` is a loop of refs alone, and is not followed)."""
        if not isinstance(schema, dict):
            return {}, seen
        schema, seen = self.follow_refs(schema, seen)
        if not any(isinstance(schema.get(key), list) for key, _ in COMBINERS):
            return schema, seen
        merged = {k: v for k, v in schema.items() if k not in ("allOf", "oneOf", "anyOf")}
        properties = dict(merged.get("properties") or {})
        required = list(merged.get("required") or ())
        for key, keeps_required in COMBINERS:
            for part in schema.get(key) or ():
                sub, _ = self.resolve(part, seen)
                properties.update(sub.get("properties") or {})
                if keeps_required:  # only allOf parts all apply at once
                    required.extend(sub.get("required") or ())
                _inherit(merged, sub)
        if properties:
            merged["properties"] = properties
        merged["required"] = required
        return merged, seen

    def follow_refs(self, schema: dict, seen: frozenset[str]) -> tuple[dict, frozenset[str]]:
        chain = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return {"type": "object", "description": f"not expanded: external reference {ref}"}, seen
            if ref in seen:
                return {"type": "object", "description": f"not expanded: {ref} refers back to itself"}, seen
            chain += 1
            self.refs += 1
            if chain > LIMITS.openapi_ref_chain:
                raise SchemaError(
                    f"the reference {ref} is reached through more than {LIMITS.openapi_ref_chain} "
                    "references in a row"
                )
            if self.refs > LIMITS.openapi_refs:
                raise SchemaError(
                    f'reading the schema "{self.name}" follows more than {LIMITS.openapi_refs:,} '
                    "references; choose a smaller schema"
                )
            seen = seen | {ref}
            target = _pointer(self.doc, ref)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema, seen


def _constraints(schema: dict) -> dict:
    """The checks a property's schema declares that a FieldSpec keeps: format, enum, lengths."""
    found: dict[str, Any] = {}
    if schema.get("format") in FORMATS and schema["format"] not in (
        "date",
        "date-time",
    ):  # the type says those
        found["format"] = schema["format"]
    values = schema.get("enum")
    if isinstance(values, list) and 0 < len(values) <= ENUM_MAX:
        scalars = tuple(v for v in values if v is None or isinstance(v, str | int | float | bool))
        if len(scalars) == len(values):
            found["enum"] = scalars
    for key, name in (("minLength", "min_length"), ("maxLength", "max_length")):
        if isinstance(schema.get(key), int) and not isinstance(schema[key], bool) and schema[key] >= 0:
            found[name] = schema[key]
    return found


def _ref_of(schema: Any) -> str | None:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref if isinstance(ref, str) else None


def _inherit(merged: dict, part: dict) -> None:
    """A combined part's type, description, format and items apply where the whole says none."""
    for key in ("type", "description", "format", "items", "enum", "minLength", "maxLength"):
        if key in part and key not in merged:
            merged[key] = part[key]


def _pointer(doc: dict, ref: str) -> dict:
    node: Any = doc
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise SchemaError(f'the reference "{ref}" points at nothing in the document')
        node = node[key]
    if not isinstance(node, dict):
        raise SchemaError(f'the reference "{ref}" does not point at a schema')
    return node


def _openapi_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
        kind = next((item for item in kind if item != "null"), None)
    if kind == "string":
        return {"date": "date", "date-time": "datetime"}.get(schema.get("format"), "string")
    if kind in ("integer", "number", "boolean", "object", "array"):
        return kind
    if kind is None and ("properties" in schema or "additionalProperties" in schema):
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return "string"


# --------------------------------------------------------------------------------------------------
# Validation and drift
# --------------------------------------------------------------------------------------------------

_MISSING = object()


def validate_record(record: dict, fields: list[FieldSpec]) -> list[Issue]:
    """Required fields that are missing and values of the wrong type; unknown fields are ignored.

    A required field inside an optional object is only required when that object is present.
    """
    issues: list[Issue] = []
    for spec in fields:
        for where, value in _locate(record, compile_path(spec.path).segments):
            if value is _MISSING or value is None:
                if spec.required:
                    issues.append(Issue(where, "missing_required", f'"{where}" is required but missing'))
            elif not _has_type(value, spec.type):
                message = (
                    f'"{where}" should be {TYPE_WORDS.get(spec.type, spec.type)}, but it is {_shown(value)}'
                )
                issues.append(Issue(where, "wrong_type", message))
    return issues


def detect_drift(record: dict, fields: list[FieldSpec]) -> list[Issue]:
    """validate_record's issues plus fields the record has but the data model does not declare."""
    issues = validate_record(record, fields)
    declared = {spec.path for spec in fields}
    opaque = [
        spec.path
        for spec in fields
        if spec.type in ("object", "array")
        and not any(_is_below(other, spec.path) for other in declared if other != spec.path)
    ]
    reported: set[str] = set()
    for leaf in _leaf_paths(record, ""):
        known = (
            leaf in declared
            or any(_is_below(path, leaf) for path in declared)
            or any(_is_below(leaf, container) for container in opaque)
        )
        if not known and leaf not in reported:
            reported.add(leaf)
            issues.append(Issue(leaf, "unknown_field", f'"{leaf}" is not in the data model'))
    return issues


def _is_below(path: str, ancestor: str) -> bool:
    return path.startswith(f"{ancestor}.") or path.startswith(f"{ancestor}[]")


def _locate(record: Any, segments: tuple[Segment, ...], where: str = "") -> Iterator[tuple[str, Any]]:
    """(concrete path, value or _MISSING) for each place a field path points at whose parent exists."""
    value = record
    last = len(segments) - 1
    for position, segment in enumerate(segments):
        if segment.every:
            if isinstance(value, list):
                for number, item in enumerate(value):
                    yield from _locate(item, segments[position + 1 :], f"{where}[{number}]")
            return
        if segment.key is None:  # "[2]": a fixed position
            if not isinstance(value, list) or not -len(value) <= segment.index < len(value):
                return
            where, value = f"{where}[{segment.index}]", value[segment.index]
            continue
        if not isinstance(value, dict):
            return  # the parent is missing or of the wrong type; its own field reports that
        where = f"{where}.{segment.key}" if where else segment.key
        if segment.key not in value:
            if position == last:
                yield where, _MISSING
            return
        value = value[segment.key]
        if value is None and position != last:
            return
    yield where, value


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return is_date_text(value)
    if kind == "datetime":
        return is_datetime_text(value)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return True  # an unknown type declares nothing to check


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'the text "{value[:60]}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    return _kind_of(value)


def _leaf_paths(value: Any, prefix: str) -> Iterator[str]:
    for path, _ in _leaf_values(value, prefix):
        yield path


# --------------------------------------------------------------------------------------------------
# Shape fingerprints and drift against a data model
# --------------------------------------------------------------------------------------------------

# The kinds of change a record's shape can show against its data model, in the words the drift
# report uses.
DRIFT_KINDS = {
    "added": "new field",
    "removed": "field gone",
    "renamed": "field renamed",
    "type_changed": "type changed",
    "newly_null": "now empty (null)",
}


@dataclass(frozen=True)
class ShapeChange:
    """One way a record's shape differs from its data model: `path` is the model's field (for an
    added field, the record's), `new_path` where a renamed field went, and `sample` one value seen."""

    kind: str
    path: str
    new_path: str = ""
    expected: str = ""  # the model's type
    seen: str = ""  # the record's type
    sample: Any = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.path, self.new_path)


def value_kind(value: Any) -> str:
    """A value's type in the model's words, "null" for None: what a fingerprint and a drift see."""
    if value is None:
        return "null"
    return _infer_type(value)


def _fingerprint_kind(value: Any) -> str:
    """value_kind, cheaper: dates are told apart by their shape only (the full comparison, run on a
    new fingerprint, checks them properly)."""
    if isinstance(value, str):
        if len(value) >= 10 and value[4:5] == "-" and value[:4].isdigit():
            return "date" if len(value) == 10 else "datetime"
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "other"


def shape_fingerprint(record: Any, opaque: frozenset[str] = frozenset()) -> str:
    """A short hash of a record's shape: its sorted leaf paths with their kinds (null included).
    Paths in `opaque` (objects and lists the model keeps whole) are not looked into, so free-form
    metadata does not make every record a new shape."""
    leaves: list[str] = []
    _shape_leaves(record, "", opaque, leaves)
    leaves.sort()
    return hashlib.blake2b("\n".join(leaves).encode(), digest_size=12).hexdigest()


def _shape_leaves(value: Any, path: str, opaque: frozenset[str], leaves: list[str]) -> None:
    if isinstance(value, dict):
        if not value or path in opaque:
            leaves.append(f"{path}:object")
            return
        for key, child in value.items():
            _shape_leaves(child, f"{path}.{key}" if path else key, opaque, leaves)
    elif isinstance(value, list):
        leaves.append(f"{path}:array")
        if path not in opaque:
            seen: set[str] = set()
            for item in value:
                if isinstance(item, dict):
                    inner: list[str] = []
                    _shape_leaves(item, f"{path}[]", opaque, inner)
                    seen.update(inner)
            leaves.extend(seen)
    else:
        leaves.append(f"{path}:{_fingerprint_kind(value)}")


def opaque_paths(fields: Iterable[FieldSpec]) -> frozenset[str]:
    """Objects and lists the model declares without declaring what is inside them."""
    specs = list(fields)
    declared = {spec.path for spec in specs}
    return frozenset(
        spec.path
        for spec in specs
        if spec.type in ("object", "array") and not any(_is_below(other, spec.path) for other in declared)
    )


def shape_changes(record: dict, fields: list[FieldSpec], *, watched: Iterable[str] = ()) -> list[ShapeChange]:
    """How `record` differs from the data model: fields added, removed (a required field that is
    absent), renamed-looking (a removed field, or an absent `watched` one, and an added field of
    its type beside it, paired by name likeness), of another type, or newly null (a required
    field). An optional field that is simply absent is no change: records may leave it out."""
    watched = set(watched)
    changes: dict[tuple[str, str, str], ShapeChange] = {}
    optional_gone: set[tuple[str, str, str]] = set()
    for spec in fields:
        for _, value in _locate(record, compile_path(spec.path).segments):
            if value is _MISSING:
                if spec.required or spec.path in watched:
                    change = ShapeChange("removed", spec.path, expected=spec.type)
                    changes.setdefault(change.key, change)
                    if not spec.required:  # optional: gone only if it reads as renamed
                        optional_gone.add(change.key)
            elif value is None:
                if spec.required:
                    change = ShapeChange("newly_null", spec.path, expected=spec.type, seen="null")
                    changes.setdefault(change.key, change)
            elif not _has_type(value, spec.type):
                change = ShapeChange(
                    "type_changed", spec.path, expected=spec.type, seen=value_kind(value), sample=value
                )
                changes.setdefault(change.key, change)
    declared = {spec.path for spec in fields}
    opaque = opaque_paths(fields)
    for leaf, value in _leaf_values(record, ""):
        known = (
            leaf in declared
            or any(_is_below(path, leaf) for path in declared)
            or any(_is_below(leaf, container) for container in opaque)
        )
        if not known:
            change = ShapeChange("added", leaf, seen=value_kind(value), sample=value)
            changes.setdefault(change.key, change)
    return [c for c in _pair_renames(list(changes.values())) if c.key not in optional_gone]


def _pair_renames(changes: list[ShapeChange]) -> list[ShapeChange]:
    """A removed field and an added one under the same parent, the added one's values of the
    removed one's type, read as a rename: the likeliest pairs by name first."""
    removed = [c for c in changes if c.kind == "removed"]
    added = [c for c in changes if c.kind == "added"]
    candidates = sorted(
        (
            (SequenceMatcher(None, _leaf_name(gone.path), _leaf_name(new.path)).ratio(), gone, new)
            for gone in removed
            for new in added
            if _parent(gone.path) == _parent(new.path)
            and (new.sample is None or _has_type(new.sample, gone.expected))
        ),
        key=lambda candidate: -candidate[0],
    )
    paired: dict[tuple[str, str, str], ShapeChange] = {}
    taken: set[tuple[str, str, str]] = set()
    for _, gone, new in candidates:
        if gone.key in paired or new.key in taken:
            continue
        paired[gone.key] = new
        taken.add(new.key)
    result = []
    for change in changes:
        if change.key in taken:
            continue
        if new := paired.get(change.key):
            change = ShapeChange(
                "renamed", change.path, new.path, expected=change.expected, seen=new.seen, sample=new.sample
            )
        result.append(change)
    return result


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _leaf_name(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()


def _leaf_values(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(leaf path, the first value found there), the leaf paths of _leaf_paths."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaf_values(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
        for item in value:
            if isinstance(item, dict):
                yield from _leaf_values(item, f"{prefix}[]")
    elif prefix:
        yield prefix, value
