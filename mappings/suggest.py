"""Which source field probably fills which target field: same-named pairs and likely pairs.

The mapper offers these with one click each; the rules it proposes are ordinary mapping rules.
Names compare without case, separators, camelCase humps and nesting: "firstName", "first_name",
"first-name" and "contact.first_name" all read as the words (first, name).
"""

import re
from dataclasses import dataclass
from typing import Any

from mappings.schema import FieldSpec

CONTAINERS = ("object", "array")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATOR = re.compile(r"[^A-Za-z0-9]+")

NAME_WORDS = {"name", "fullname", "displayname", "contactname", "customername", "personname"}
ID_ENDINGS = {"id", "ref", "reference"}
UNIT_WORDS = {"minor", "cents", "cent", "pence", "penny"}
ID_TARGET_WORDS = {"external", "source", "origin", "foreign", "remote"}


@dataclass(frozen=True)
class Suggestion:
    """A proposed rule for one target field, with why it is proposed in plain words."""

    target: str
    rule: dict[str, Any]
    why: str
    same_named: bool
    source_label: str = ""  # the source side in words, when it is more than one field

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "rule": self.rule,
            "why": self.why,
            "same_named": self.same_named,
            "source_label": self.source_label or self.rule.get("source", ""),
        }


def words_of(path: str) -> tuple[str, ...]:
    """The lower-case words of a field path's last part: "contact.firstName" -> ("first", "name")."""
    leaf = path.replace("[]", "").rsplit(".", 1)[-1]
    return tuple(word.lower() for word in _SEPARATOR.split(_HUMP.sub("_", leaf)) if word)


def _whole_words(path: str) -> tuple[str, ...]:
    """The words of the whole path: "customer.email" -> ("customer", "email")."""
    return tuple(word for part in path.replace("[]", "").split(".") for word in words_of(part))


def _depth(path: str) -> int:
    return path.count(".")


def _mappable(fields: list[FieldSpec]) -> list[FieldSpec]:
    """Fields a plain rule can fill or read: no list items, and no object whose fields are listed."""
    paths = {spec.path for spec in fields}
    return [
        spec
        for spec in fields
        if "[]" not in spec.path
        and not (spec.type in CONTAINERS and any(p.startswith(f"{spec.path}.") for p in paths))
    ]


def _kinds_fit(source: FieldSpec, target: FieldSpec) -> bool:
    """A container only fills a container of the same kind; scalars fill scalars."""
    if source.type in CONTAINERS or target.type in CONTAINERS:
        return source.type == target.type
    return True


def _best(candidates: list[FieldSpec]) -> FieldSpec | None:
    """The shallowest candidate, or none when two are equally shallow (the choice is the admin's)."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda spec: _depth(spec.path))
    if len(ranked) > 1 and _depth(ranked[0].path) == _depth(ranked[1].path):
        return None
    return ranked[0]


def same_named_source(target: FieldSpec, sources: list[FieldSpec]) -> FieldSpec | None:
    """The source field with the same name as `target`, if exactly one stands out.

    The whole path first ("customer_email" <- "customer.email"), then the last part alone
    ("email" <- "contact.email").
    """
    fitting = [spec for spec in sources if _kinds_fit(spec, target)]
    whole = [spec for spec in fitting if _whole_words(spec.path) == _whole_words(target.path)]
    if whole:
        return _best(whole)
    return _best([spec for spec in fitting if words_of(spec.path) == words_of(target.path)])


def _find(sources: list[FieldSpec], test) -> FieldSpec | None:
    return _best([spec for spec in sources if spec.type not in CONTAINERS and test(words_of(spec.path))])


def _joined_name(target: str, sources: list[FieldSpec]) -> Suggestion | None:
    first = _find(sources, lambda words: words in (("first", "name"), ("given", "name"), ("firstname",)))
    last = _find(
        sources, lambda words: words in (("last", "name"), ("family", "name"), ("surname",), ("lastname",))
    )
    if first is None or last is None:
        return None
    rule = {
        "target": target,
        "source": first.path,
        "transforms": [{"name": "concat", "options": {"paths": [last.path], "separator": " "}}],
    }
    return Suggestion(
        target, rule, "the first and last name, joined with a space", False, f"{first.path} + {last.path}"
    )


def _is_id_like(words: tuple[str, ...], owner_words: set[str]) -> bool:
    """An external id or reference: "external_id", "reference", "crm_ref", "deal_id" (from a Deal)."""
    if not words or words[-1] not in ID_ENDINGS or words == ("id",):
        return False
    return len(words) == 1 or bool(set(words[:-1]) & (ID_TARGET_WORDS | owner_words))


def _likely(
    target: FieldSpec, sources: list[FieldSpec], id_path: str, owner_words: set[str]
) -> Suggestion | None:
    """A likely source for a target field whose name differs: names, email addresses, ids."""
    words = words_of(target.path)
    joined = "".join(words)
    if target.type in CONTAINERS:
        return None
    if "email" in words or joined.endswith("email"):
        found = _find(sources, lambda w: "email" in w or "".join(w).endswith("email"))
        why = "both are an email address"
    elif joined in NAME_WORDS:
        found = _find(sources, lambda w: "".join(w) in NAME_WORDS)
        if found is None:
            return _joined_name(target.path, sources)
        why = "both name a person or a company"
    elif _is_id_like(words, owner_words):
        found = next((spec for spec in sources if spec.path == id_path), None)
        why = f"{id_path} identifies the source record, so the target keeps where it came from"
    else:
        found = _same_money(target, sources)
        why = f"the same amount, both {target.unit}"
    if found is None:
        return None
    return Suggestion(target.path, {"target": target.path, "source": found.path}, why, False)


def _same_money(target: FieldSpec, sources: list[FieldSpec]) -> FieldSpec | None:
    """The source field named like the target but for a unit word, in the same unit: an "amount"
    in cents for an "amount_minor" in cents."""
    bare = tuple(word for word in words_of(target.path) if word not in UNIT_WORDS)
    if not target.unit or not bare:
        return None
    return _best(
        [
            spec
            for spec in sources
            if spec.unit == target.unit
            and tuple(word for word in words_of(spec.path) if word not in UNIT_WORDS) == bare
        ]
    )


def mapping_suggestions(
    *,
    sources: list[FieldSpec],
    targets: list[FieldSpec],
    source_id_path: str = "id",
    target_id_path: str = "id",
    source_names: tuple[str, ...] = (),
) -> list[Suggestion]:
    """For each target field, the rule that probably fills it: its same-named source field, or a
    likely pair (a name, an email address, the source's id for an external id or reference).

    The target's own id (`target_id_path`) is left out: the target makes it. `source_names` (the source model's and system's names) make "deal_id" or "crm_ref" read as
    the source's id. Every target field is considered; the mapper offers only those it has no
    rule for yet.
    """
    readable = _mappable(sources)
    owner_words = {word for name in source_names for word in _whole_words(name)}
    found: list[Suggestion] = []
    for target in _mappable(targets):
        if target.path == target_id_path:
            continue
        same = same_named_source(target, readable)
        if same is not None:
            rule = {"target": target.path, "source": same.path}
            why = "same name" if same.path == target.path else f"same name as {same.path}"
            found.append(Suggestion(target.path, rule, why, True))
            continue
        likely = _likely(target, readable, source_id_path, owner_words)
        if likely is not None:
            found.append(likely)
    return found
