"""The mapping engine: rules (one per target field) that turn a source record into a target record.

A rule is JSON: {"target", "source" | "constant", "transforms": [{"name", "options"}], "note",
"keep_null"}. Compile rules once (compile_rules) and apply the result to many records; preview
runs the same code but never raises, so the mapper UI can show each rule's error beside it.
"""

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from common.paths import Path, PathError, compile_path
from mappings.transforms import (
    TRANSFORMS,
    Transform,
    TransformError,
    apply_transform,
    describe_value,
    resolve_options,
    validate_options,
)

__all__ = [
    "CompiledMapping",
    "MappingError",
    "Preview",
    "RuleError",
    "apply_mapping",
    "compile_rules",
    "describe_rule",
    "diff_rules",
    "preview_mapping",
    "validate_rules",
]

RULE_KEYS = ("target", "source", "constant", "transforms", "note", "keep_null")
STEP_KEYS = ("name", "options")


@dataclass(frozen=True)
class RuleError:
    """A problem with one rule; index is the rule's position (0-based), -1 for the whole mapping."""

    index: int
    target: str
    message: str


class MappingError(Exception):
    """One or more rules failed; errors lists every one."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(error.message for error in self.errors))


def _rule_error(index: int, target: str, problem: str) -> RuleError:
    where = f"Rule {index + 1} ({target})" if target else f"Rule {index + 1}"
    return RuleError(index, target, f"{where}: {problem}")


def _mapping_error(problem: str) -> RuleError:
    return RuleError(-1, "", problem)


# --------------------------------------------------------------------------------------------------
# Compiled rules
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledStep:
    transform: Transform
    options: dict  # validated and resolved once; never mutated


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    target: Path
    source: Path | None
    constant: Any
    has_constant: bool
    steps: tuple[CompiledStep, ...]
    keep_null: bool

    def value_for(self, record: dict) -> Any:
        """This rule's final value for record; raises TransformError."""
        if self.has_constant:
            value = self.constant
        elif self.source is not None:
            value = self.source.get(record)
        else:
            value = None
        for step in self.steps:
            value = apply_transform(step.transform, value, step.options, record)
        return value

    def error(self, problem: str) -> RuleError:
        return _rule_error(self.index, self.target.text, problem)


@dataclass(frozen=True)
class CompiledMapping:
    """Validated rules ready to apply to any number of records; safe to cache and share."""

    rules: tuple[CompiledRule, ...]
    rule_count: int

    def apply(self, source: dict) -> dict:
        """The target record for source; raises MappingError listing every failing rule."""
        output, errors, _ = self.run(source)
        if errors:
            raise MappingError(errors)
        return output

    def run(self, source: dict) -> tuple[dict, list[RuleError], list[Any]]:
        """(output, errors, each rule's final value): what apply and preview are built on."""
        values: list[Any] = [None] * self.rule_count
        if not isinstance(source, dict):
            return {}, [_mapping_error("The record must be a JSON object.")], values
        output: dict = {}
        errors: list[RuleError] = []
        # A single value aimed at "items[].field" fills every item, so it waits until the rules that
        # create the items have run, whatever the rule order.
        fill_every_item: list[tuple[CompiledRule, Any]] = []
        for rule in self.rules:
            try:
                value = rule.value_for(source)
            except TransformError as exc:
                errors.append(rule.error(str(exc)))
                continue
            except Exception as exc:  # a bug must not take the worker or the preview down
                errors.append(rule.error(f"could not compute the value ({type(exc).__name__}: {exc})"))
                continue
            values[rule.index] = value
            if rule.target.has_every and value is not None and not isinstance(value, list):
                fill_every_item.append((rule, value))
            else:
                _write(rule, output, value, errors)
        for rule, value in fill_every_item:
            _write(rule, output, value, errors)
        errors.sort(key=lambda error: error.index)
        return output, errors, values


def _write(rule: CompiledRule, output: dict, value: Any, errors: list[RuleError]) -> None:
    if value is None and not rule.keep_null:
        return
    try:
        rule.target.set(output, _detached(value), skip_none=not rule.keep_null)
    except PathError as exc:
        errors.append(rule.error(str(exc)))


def _detached(value: Any) -> Any:
    """A copy of lists and objects, so the output never shares (and later rules never edit) the input."""
    if isinstance(value, dict):
        return {key: _detached(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_detached(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------------
# Validation and compilation
# --------------------------------------------------------------------------------------------------


def validate_rules(rules: Any) -> list[RuleError]:
    """Structural problems with rules (shape, paths, transform names and options); no record needed."""
    if not isinstance(rules, list):
        return [_mapping_error("The rules must be a list.")]
    errors: list[RuleError] = []
    first_rule_for: dict[str, int] = {}
    for index, rule in enumerate(rules):
        errors.extend(_rule_problems(index, rule))
        target = rule.get("target") if isinstance(rule, dict) else None
        if isinstance(target, str) and target:
            if target in first_rule_for:
                problem = f"rule {first_rule_for[target] + 1} already writes this field"
                errors.append(_rule_error(index, target, problem))
            else:
                first_rule_for[target] = index
    return errors


def _rule_problems(index: int, rule: Any) -> list[RuleError]:
    if not isinstance(rule, dict):
        return [_rule_error(index, "", "must be an object with a target field")]
    target = rule.get("target")
    label = target if isinstance(target, str) else ""
    problems = []
    unknown = [str(key) for key in rule if key not in RULE_KEYS]
    if unknown:
        problems.append(f"unknown setting {_quoted(unknown)} (allowed: {', '.join(RULE_KEYS)})")
    problems += _target_problems(target) + _source_problems(rule) + _transforms_problems(rule)
    if not isinstance(rule.get("keep_null", False), bool):
        problems.append('"keep_null" must be true or false')
    if not isinstance(rule.get("note", ""), str | None):
        problems.append("the note must be text")
    return [_rule_error(index, label, problem) for problem in problems]


def _target_problems(target: Any) -> list[str]:
    if not isinstance(target, str) or not target.strip():
        return ["choose a target field"]
    problems = _path_problem(target, "target")
    if not problems and compile_path(target).segments[0].key is None:
        problems.append("the target must start with a field name")
    return problems


def _source_problems(rule: dict) -> list[str]:
    source = rule.get("source")
    if source in (None, ""):
        return []
    problems = (
        _path_problem(source, "source") if isinstance(source, str) else ["the source must be a field path"]
    )
    if _has_constant(rule):
        problems.append("use either a source field or a constant, not both")
    return problems


def _transforms_problems(rule: dict) -> list[str]:
    steps = rule.get("transforms")
    if steps is not None and not isinstance(steps, list):
        return ["transforms must be a list"]
    if steps:
        return [
            problem for number, step in enumerate(steps, start=1) for problem in _step_problems(number, step)
        ]
    if rule.get("source") in (None, "") and not _has_constant(rule) and rule.get("keep_null") is not True:
        return ["choose a source field, a constant, or a transform that produces a value"]
    return []


def _step_problems(number: int, step: Any) -> list[str]:
    if not isinstance(step, dict) or not isinstance(step.get("name"), str):
        return [f"transform {number} must be an object with a name"]
    found = TRANSFORMS.get(step["name"])
    where = f"transform {number} ({found.label})" if found else f"transform {number}"
    unknown = [str(key) for key in step if key not in STEP_KEYS]
    problems = [f"{where}: unknown setting {_quoted(unknown)}"] if unknown else []
    problems += [
        f"{where}: {problem}" for problem in validate_options(step["name"], step.get("options") or {})
    ]
    return problems


def _path_problem(text: str, role: str) -> list[str]:
    try:
        compile_path(text)
    except PathError as exc:
        return [f"the {role} {exc}" if str(exc).startswith('"') else f"the {role}: {exc}"]
    return []


def _has_constant(rule: dict) -> bool:
    return rule.get("constant") is not None


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def compile_rules(rules: list[dict]) -> CompiledMapping:
    """Validate and compile rules once for reuse; raises MappingError listing every problem."""
    errors = validate_rules(rules)
    if errors:
        raise MappingError(errors)
    return _compile(rules, skip=set())


def _compile(rules: list, skip: set[int]) -> CompiledMapping:
    compiled = tuple(_compile_rule(index, rule) for index, rule in enumerate(rules) if index not in skip)
    return CompiledMapping(compiled, len(rules))


def _compile_rule(index: int, rule: dict) -> CompiledRule:
    source = rule.get("source")
    steps = tuple(
        CompiledStep(
            TRANSFORMS[step["name"]],
            # A private copy: the caller may go on editing its rules while this mapping is in use.
            copy.deepcopy(resolve_options(TRANSFORMS[step["name"]], step.get("options") or {})),
        )
        for step in rule.get("transforms") or ()
    )
    return CompiledRule(
        index=index,
        target=compile_path(rule["target"]),
        source=compile_path(source) if source else None,
        constant=copy.deepcopy(rule.get("constant")),
        has_constant=_has_constant(rule),
        steps=steps,
        keep_null=rule.get("keep_null", False),
    )


def apply_mapping(rules: list[dict], source: dict) -> dict:
    """Compile (cached by content) and apply rules to one record; raises MappingError."""
    return _compiled(rules).apply(source)


def _compiled(rules: list[dict]) -> CompiledMapping:
    try:
        key = json.dumps(rules, sort_keys=True)
    except (TypeError, ValueError):
        return compile_rules(rules)
    return _compile_json(key)


@lru_cache(maxsize=256)
def _compile_json(key: str) -> CompiledMapping:
    return compile_rules(json.loads(key))


# --------------------------------------------------------------------------------------------------
# For the mapper UI and the audit trail
# --------------------------------------------------------------------------------------------------


@dataclass
class Preview:
    output: dict
    errors: list[RuleError]
    values: list[Any]  # values[i]: rule i's final value, None when it failed or produced nothing


def preview_mapping(rules: list[dict], source: dict) -> Preview:
    """Run rules on a sample record without raising: valid rules run, every problem is listed."""
    errors = validate_rules(rules)
    if not isinstance(rules, list):
        return Preview({}, errors, [])
    compiled = _compile(rules, skip={error.index for error in errors})
    output, run_errors, values = compiled.run(source)
    return Preview(output, sorted(errors + run_errors, key=lambda error: error.index), values)


def describe_rule(rule: dict) -> str:
    """One plain-language line, e.g. 'customer.email ← contact.email, then Lower case'."""
    if not isinstance(rule, dict):
        return "(not a rule)"
    target = rule.get("target") or "(no target)"
    steps = [step for step in rule.get("transforms") or () if isinstance(step, dict)]
    if rule.get("source"):
        origin = str(rule["source"])
    elif _has_constant(rule):
        origin = describe_value(rule["constant"])
    elif steps:
        origin, steps = _describe_step(steps[0]), steps[1:]
    else:
        origin = "nothing"
    return ", then ".join([f"{target} ← {origin}", *(_describe_step(step) for step in steps)])


def _describe_step(step: dict) -> str:
    found = TRANSFORMS.get(step.get("name"))
    if found is None:
        return f'unknown transform "{step.get("name")}"'
    options = step.get("options") if isinstance(step.get("options"), dict) else {}
    shown = [
        f"{spec.label.lower()}: {_describe_option(options[spec.name])}"
        for spec in found.options
        if options.get(spec.name) is not None
    ]
    return f"{found.label} ({'; '.join(shown)})" if shown else found.label


def _describe_option(value: Any) -> str:
    if isinstance(value, dict):
        return f"{len(value)} entries"
    if isinstance(value, list):
        return ", ".join(describe_value(item) for item in value)
    return describe_value(value)


def diff_rules(old: list[dict], new: list[dict]) -> list[dict]:
    """What changed between two versions of a mapping, field by field; unchanged rules are left out."""
    before = _by_target(old)
    after = _by_target(new)
    changes = []
    for target, rule in after.items():
        if target not in before:
            changes.append({"target": target, "change": "added", "before": None, "after": rule})
        elif _normalised(before[target]) != _normalised(rule):
            changes.append({"target": target, "change": "changed", "before": before[target], "after": rule})
    for target, rule in before.items():
        if target not in after:
            changes.append({"target": target, "change": "removed", "before": rule, "after": None})
    return changes


def _by_target(rules: list[dict]) -> dict[str, dict]:
    keyed: dict[str, dict] = {}
    for rule in rules or ():
        if isinstance(rule, dict):
            keyed.setdefault(str(rule.get("target", "")), rule)
    return keyed


def _normalised(rule: dict) -> dict:
    """A rule with the optional parts spelled out, so {} and a missing key compare equal."""
    normal = {key: value for key, value in rule.items() if value is not None}
    for key, empty in (("transforms", []), ("note", ""), ("keep_null", False), ("source", "")):
        if key in normal and normal[key] == empty and type(normal[key]) is type(empty):
            del normal[key]
    if "transforms" in normal:
        normal["transforms"] = [
            {"name": step.get("name"), "options": step.get("options") or {}}
            if isinstance(step, dict)
            else step
            for step in normal["transforms"]
        ]
    return normal
