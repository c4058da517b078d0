"""The hub's limits on input from outside: one table, read by every door.

Each limit carries the reason for its value. Only the body sizes and the API page size depend on
a deployment (bigger webhooks from one vendor, a client reading long pages), so only those may be
changed from the environment; the others bound work the hub does per request whatever the
deployment, and a change to them is a change to the code.

Every refusal names the limit it hit, so an admin or a client knows what to change.
"""

import os
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

KB = 1024
MB = 1024 * KB


def _env_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


@dataclass(frozen=True)
class Limits:
    # --- request bodies --------------------------------------------------------------------------
    # One event as a system sends it; larger is a file, not a record. (HUB_MAX_WEBHOOK_BYTES)
    webhook_bytes: int = 1 * MB
    # A publish batch: up to batch_events events of typical size in one request. (HUB_MAX_BATCH_BYTES)
    batch_bytes: int = 16 * MB
    # Events in one publish batch: each is stored with its deliveries in one transaction.
    batch_events: int = 1000

    # --- JSON, wherever it comes from --------------------------------------------------------------
    # Deeper than any business record; far below Python's recursion limit (about 1,000 frames).
    json_depth: int = 64
    # Keys in one object: a record with more is a table, and each key becomes a mapper field.
    json_object_keys: int = 10_000
    # Keys in one document: bounds the memory a body can make (a key costs ~100 bytes in Python).
    json_total_keys: int = 500_000
    # Characters in one text value: a 1 MB string already is a file, not a field.
    json_string_chars: int = 1 * MB
    # Characters of one number: refuses 1e999 and 5,000-digit integers before converting them.
    json_number_chars: int = 64
    # Integers fit in 64 bits: what PostgreSQL, SQLite and most APIs hold without loss.
    json_integer_max: int = 2**64 - 1

    # --- YAML (the specification, OpenAPI documents) -----------------------------------------------
    # Nesting of a YAML document; the parser's composer recurses in C and crashes the worker at ~50,000.
    yaml_depth: int = 64
    # Aliases (*name) in one document: real documents use a few; thousands are a "billion laughs".
    yaml_aliases: int = 100
    # Values of a document with every alias expanded: what later steps walk, so the real size.
    yaml_nodes: int = 200_000
    # A specification document: every system, model and flow of a hub fits in far less.
    spec_bytes: int = 2 * MB
    # An uploaded or pasted OpenAPI document: the largest public APIs' documents are ~5 MB.
    openapi_bytes: int = 5 * MB

    # --- OpenAPI schemas ------------------------------------------------------------------------
    # Levels of nested objects read from a schema: a category with a parent category stops here.
    openapi_depth: int = 6
    # $refs followed one after another (A -> B -> C) before a schema is reached.
    openapi_ref_chain: int = 32
    # Fields one schema may expand to: a data model with more is not one kind of record.
    openapi_fields: int = 2000
    # $refs followed while reading one schema: allOf parts that refer to allOf parts multiply.
    openapi_refs: int = 20_000

    # --- flow filters ---------------------------------------------------------------------------
    # Characters of a filter typed in the flow form or a specification.
    filter_chars: int = 2000
    # Nesting of a filter (parentheses, not, all, any): real filters use two or three levels.
    filter_depth: int = 16

    # --- mapper and dead letters ------------------------------------------------------------------
    # A mapper preview or save request: the rules and a pasted record.
    mapper_request_bytes: int = 1 * MB
    # Rules in one mapping: one per target field, and no data model has more fields than this.
    mapping_rules: int = 2000
    # A preview answer shows the record, the output and each rule's value: a few times the request.
    preview_answer_bytes: int = 4 * MB
    # A corrected record for fix-and-replay: it came from one event, so one event's size.
    replay_record_bytes: int = 1 * MB

    # --- UI text boxes --------------------------------------------------------------------------
    # A sample record or a JSON value typed into a form field.
    form_json_bytes: int = 1 * MB

    # --- ids and cursors in URLs and forms ----------------------------------------------------------
    # Digits of an id or a keyset cursor: 18 always fit a 64-bit column (int() of 5,000 digits fails).
    id_digits: int = 18

    # --- API pages ------------------------------------------------------------------------------
    # Rows in one API page when the client names no limit.
    api_page_size: int = 50
    # Most rows one API page may hold (limit=): a bigger page is an export. (HUB_API_MAX_LIMIT)
    api_max_limit: int = 500
    # Highest offset=: OFFSET reads and skips every row before it; beyond this, filter instead.
    api_max_offset: int = 1_000_000


def _from_environment() -> Limits:
    base = Limits()
    webhook = _env_int("HUB_MAX_WEBHOOK_BYTES", base.webhook_bytes, minimum=KB, maximum=64 * MB)
    return Limits(
        webhook_bytes=webhook,
        batch_bytes=_env_int("HUB_MAX_BATCH_BYTES", base.batch_bytes, minimum=webhook, maximum=256 * MB),
        api_max_limit=_env_int(
            "HUB_API_MAX_LIMIT", base.api_max_limit, minimum=base.api_page_size, maximum=10_000
        ),
    )


LIMITS = _from_environment()


def row_id(raw: object) -> int | None:
    """A database id or keyset cursor from text a person sent: digits only, at most id_digits."""
    text = str(getattr(raw, "pk", raw) if raw is not None else "")
    return int(text) if text.isdigit() and text.isascii() and len(text) <= LIMITS.id_digits else None
