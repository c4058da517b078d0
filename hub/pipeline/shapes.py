"""What the drift check (hub/pipeline/drift.py) keeps in process memory: each source model's
shape, read at most every CACHE_SECONDS, and the record shapes already compared with it."""

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from hub.models import SchemaDrift
from mappings.models import Field
from mappings.schema import FieldSpec, opaque_paths

CACHE_SECONDS = 2.0  # how long a process uses a model's fields before reading them again


@dataclass(frozen=True)
class ModelShape:
    """A source model as the drift check sees it: its fields, what it keeps whole, the changes an
    admin dismissed, and a token that changes whenever any of those does."""

    model_id: int
    system_id: int
    fields: tuple[FieldSpec, ...]
    opaque: frozenset[str]
    dismissed: frozenset[tuple[str, str, str]]
    token: str


@dataclass(frozen=True)
class DriftRef:
    id: int
    kind: str
    path: str
    new_path: str
    words: str


_lock = threading.Lock()
_shapes: dict[int, tuple[float, ModelShape]] = {}
# (model, model token, the flow's needs) -> fingerprint -> the drifts that shape shows
known_shapes: dict[tuple[int, str, frozenset[str]], dict[str, tuple[DriftRef, ...]]] = {}


def forget_shapes() -> None:
    """Forget every model's shape and every known record shape, as a new process would."""
    with _lock:
        _shapes.clear()
        known_shapes.clear()


def shape_forget(model_id: int) -> None:
    """Read the model's shape again at its next event in this process (other processes read it
    again within CACHE_SECONDS)."""
    with _lock:
        _shapes.pop(model_id, None)


def model_shape(model_id: int) -> ModelShape:
    """The model's shape, read at most every CACHE_SECONDS per process (two small queries)."""
    now = time.monotonic()
    cached = _shapes.get(model_id)
    if cached and cached[0] > now:
        return cached[1]
    rows = Field.objects.filter(model_id=model_id).select_related("model").order_by("position", "path")
    fields = tuple(FieldSpec(f.path, f.type, f.required) for f in rows)
    system_id = rows[0].model.system_id if rows else 0
    dismissed = frozenset(
        SchemaDrift.objects.filter(data_model_id=model_id, status=SchemaDrift.Status.DISMISSED).values_list(
            "kind", "path", "new_path"
        )
    )
    token = hashlib.sha1(
        json.dumps([[list(f.__dict__.values()) for f in fields], sorted(dismissed)]).encode()
    ).hexdigest()[:20]
    shape = ModelShape(model_id, system_id, fields, opaque_paths(fields), dismissed, token)
    with _lock:
        _shapes[model_id] = (now + CACHE_SECONDS, shape)
    return shape
