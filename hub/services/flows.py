"""Flow lifecycle: create (with its empty mapping, as a draft), update, enable, pause, resume, delete,
poll now.

Each change writes its audit entry in the same transaction.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from connectors.base import ErrorClass
from hub.models import Delivery, DeliveryStatus, Flow, FlowState, Operation, Trigger
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.retry import RetryPolicy
from hub.services.audit import audit_record
from hub.services.errors import ConfigError, values_check
from mappings.conditions import ConditionError, parse_condition_text, validate_condition
from mappings.engine import validate_rules
from mappings.models import DataModel, Mapping

# Retry, alerting and polling settings; each has a default on the model.
TUNING = (
    "max_attempts",
    "max_age_seconds",
    "retry_base_seconds",
    "retry_max_seconds",
    "retry_on",
    "silence_after_minutes",
    "poll_page_size",
    "drift_policy",
)
# Settings an admin may change on an existing flow. The systems and models are fixed once the
# mapping is built for them: a different source or target means a different flow.
EDITABLE = (
    "name",
    "description",
    "event_type",
    "operation",
    "filter",
    "trigger",
    "schedule_minutes",
    "schedule_cron",
    *TUNING,
)
FIXED = ("source_system", "source_model", "target_system", "target_model")
WEEKDAY_CRON = "1-5"


# --------------------------------------------------------------------------------------------------
# Schedules in plain words
# --------------------------------------------------------------------------------------------------


def cron_problem(expression: str) -> str:
    """Why a cron expression cannot be used ("" when it can): five fields, each valid."""
    parts = (expression or "").split()
    if len(parts) != 5:
        return (
            f"a schedule needs exactly 5 parts (minute hour day month weekday), "
            f'e.g. "0 2 * * 1-5"; this one has {len(parts)}'
        )
    if not croniter.is_valid(" ".join(parts)):
        return f'"{expression.strip()}" is not a valid schedule; check each of the 5 parts'
    return ""


def schedule_describe(*, trigger: str, minutes: int | None = None, cron: str = "") -> str:
    """'Real-time', 'Every 15 minutes', 'Every hour', 'Every day at 02:00', 'Weekdays at 02:00'."""
    if trigger != Trigger.SCHEDULED:
        return "Real-time"
    if cron:
        return _cron_describe(cron)
    minutes = minutes or 15
    if minutes == 60:
        return "Every hour"
    if minutes % 60 == 0:
        return f"Every {minutes // 60} hours"
    return "Every minute" if minutes == 1 else f"Every {minutes} minutes"


def _cron_describe(cron: str) -> str:
    parts = cron.split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2:4] == ["*", "*"]:
        at = f"{int(parts[1]):02d}:{int(parts[0]):02d}"
        if parts[4] == "*":
            return f"Every day at {at}"
        if parts[4] == WEEKDAY_CRON:
            return f"Weekdays at {at}"
    if len(parts) == 5 and parts[0].isdigit() and parts[1:] == ["*", "*", "*", "*"]:
        return f"Every hour at minute {int(parts[0])}"
    return f"On the schedule {cron}"


def schedule_short(*, trigger: str, minutes: int | None = None, cron: str = "") -> str:
    """The compact form used on map edges: 'real-time', 'every 15 min', 'weekdays 02:00'."""
    if trigger != Trigger.SCHEDULED:
        return "real-time"
    text = schedule_describe(trigger=trigger, minutes=minutes, cron=cron)
    return (
        text.replace(" minutes", " min")
        .replace("Every day at", "daily")
        .replace("Weekdays at", "weekdays")
        .replace("On the schedule", "cron")
        .lower()
    )


def schedule_next_runs(
    *, minutes: int | None = None, cron: str = "", count: int = 3, now: datetime | None = None
) -> list[datetime]:
    """When the next few polls would start (local time), for the wizard's preview."""
    now = timezone.localtime(now or timezone.now())
    if cron:
        if cron_problem(cron):
            return []
        it = croniter(cron, now)
        return [it.get_next(datetime) for _ in range(count)]
    step = timedelta(minutes=max(1, minutes or 15))
    return [now + step * n for n in range(1, count + 1)]


# --------------------------------------------------------------------------------------------------
# The retry policy in plain words
# --------------------------------------------------------------------------------------------------

# Each failure class as the retry sentence names it ("retries: timeouts, server errors (5xx), …").
ERROR_CLASS_WORDS = {
    ErrorClass.UNREACHABLE: "an unreachable system",
    ErrorClass.TIMEOUT: "timeouts",
    ErrorClass.SERVER_ERROR: "server errors (5xx)",
    ErrorClass.RATE_LIMITED: "requests to slow down (429)",
    ErrorClass.AUTH_FAILURE: "refused credentials",
    ErrorClass.OUTBOUND_REFUSED: "addresses the outbound policy refuses",
    ErrorClass.REJECTED: "rejected records (4xx)",
    ErrorClass.MALFORMED_RESPONSE: "answers that cannot be understood",
    ErrorClass.OUTCOME_UNKNOWN: "lost answers (after looking whether the record arrived)",
    ErrorClass.MAPPING_ERROR: "mapping errors",
    ErrorClass.CONTRACT_VIOLATION: "records that break what the target accepts",
    ErrorClass.SCHEMA_DRIFT: "records that no longer fit their data model",
    ErrorClass.UNKNOWN: "unexpected errors",
}
# Refused credentials and refused addresses pause every flow that uses them instead: retrying
# would not help.
RETRY_CHOICES = tuple(error_class for error_class in ErrorClass if not error_class.pauses_flow)
MAX_ATTEMPTS = 50
MAX_AGE_SECONDS = 30 * 24 * 3600
MAX_WAIT_SECONDS = 7 * 24 * 3600


def duration_words(seconds: float) -> str:
    """2 -> "2 s", 0.5 -> "0.5 s", 128 -> "2 min 8 s", 3600 -> "1 h", 86400 -> "1 day"."""
    if seconds < 60:
        return f"{round(seconds, 1):g} s"
    # Up to two days read best in hours: "24 h", "36 h".
    units = (("h", 3600), ("min", 60), ("s", 1)) if seconds < 2 * 86400 else (("day", 86400), ("h", 3600))
    whole = round(seconds)
    parts = []
    for name, size in units:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {name}{'s' if name == 'day' and count > 1 else ''}")
        if len(parts) == 2 or (parts and not count):
            break
    return " ".join(parts)


@dataclass(frozen=True)
class RetryWords:
    """A flow's retry policy as sentences for an admin: how often and how long, how it waits, what
    it retries and what it never retries."""

    tries: str
    waits: str
    retries: list[str]
    never: list[str]

    @property
    def summary(self) -> str:
        if not self.waits:
            return f"{self.tries}."
        parts = [f"{self.tries}, {self.waits}", "honours the system's Retry-After"]
        parts.append("retries: " + ", ".join(self.retries))
        if self.never:
            parts.append("never retries: " + ", ".join(self.never))
        return "; ".join(parts) + "."


def retry_describe(policy: RetryPolicy) -> RetryWords:
    """The policy in words: "Tries up to 8 times over at most 24 h, waiting up to 2 s, 4 s, 8 s …"."""
    retried = [c for c in RETRY_CHOICES if policy.retries(c)]
    never = [ERROR_CLASS_WORDS[c] for c in RETRY_CHOICES if c not in retried]
    retries = max(policy.max_attempts - 1, 0)
    if retries == 0 or not retried:
        tries, waits = "Tries once: a failure goes to the dead-letter inbox at once", ""
    else:
        tries = (
            f"Tries up to {policy.max_attempts} times over at most {duration_words(policy.max_age_seconds)}"
        )
        waits = f"waiting up to {_waits_words(policy, retries)}, with random spread"
    return RetryWords(tries=tries, waits=waits, retries=[ERROR_CLASS_WORDS[c] for c in retried], never=never)


def _waits_words(policy: RetryPolicy, retries: int) -> str:
    """The first waits and where they end: "2 s, 4 s, 8 s … capped at 1 h"."""
    cap = policy.max_seconds
    waits = [policy.backoff(n) for n in range(1, retries + 1)]
    head: list[float] = []
    for wait in waits:
        if len(head) == 3 or (head and head[-1] >= cap):
            break
        head.append(wait)
    words = ", ".join(duration_words(wait) for wait in head)
    rest = waits[len(head) :]
    if not rest:
        return words.rpartition(", ")[0] + f", then {duration_words(head[-1])}" if len(head) > 1 else words
    if head[-1] >= cap:
        return f"{words}, then {duration_words(cap)} each time"
    if rest[-1] >= cap:
        return f"{words} … capped at {duration_words(cap)}"
    return f"{words} … {duration_words(rest[-1])} (capped at {duration_words(cap)})"


def _retry_problem(flow: Flow) -> str:
    """Why the flow's retry settings cannot be used ("" when they can)."""
    if not isinstance(flow.retry_on, list) or not all(isinstance(name, str) for name in flow.retry_on):
        return "retry_on must be a list of error classes, e.g. [timeout, server_error]"
    known = {str(error_class) for error_class in RETRY_CHOICES}
    unknown = [name for name in flow.retry_on if name not in known]
    if unknown:
        return (
            f"unknown error class {', '.join(unknown)} in retry_on (use: {', '.join(sorted(known))}); "
            "refused credentials always pause the flow"
        )
    numbers = (flow.max_age_seconds, flow.retry_base_seconds, flow.retry_max_seconds)
    if not all(isinstance(n, (int, float)) and math.isfinite(n) for n in numbers):
        return "the retry times must be numbers of seconds"
    if not 1 <= flow.max_attempts <= MAX_ATTEMPTS:
        return f"a flow tries at least once and at most {MAX_ATTEMPTS} times"
    if not 0 < flow.max_age_seconds <= MAX_AGE_SECONDS:
        return "a flow keeps trying for more than 0 seconds and at most 30 days"
    if not 0 < flow.retry_base_seconds <= MAX_WAIT_SECONDS:
        return "the first wait is more than 0 seconds and at most 7 days"
    if not flow.retry_base_seconds <= flow.retry_max_seconds <= MAX_WAIT_SECONDS:
        return (
            f"the longest wait must be at least the first wait ({duration_words(flow.retry_base_seconds)}) "
            "and at most 7 days"
        )
    return ""


# --------------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------------


def _check(flow: Flow) -> None:
    """Rules the form layer also enforces, repeated here so every entry point gets them."""
    if flow.trigger == Trigger.SCHEDULED:
        if flow.schedule_cron:
            problem = cron_problem(flow.schedule_cron)
            if problem:
                raise ConfigError(problem)
            flow.schedule_minutes = None
        elif not flow.schedule_minutes:
            raise ConfigError("a scheduled flow needs a schedule")
    else:
        flow.schedule_minutes, flow.schedule_cron = None, ""
    problems = validate_condition(flow.filter)
    if problems:
        raise ConfigError("the filter is not valid: " + "; ".join(problems))
    if flow.operation not in Operation.values:
        raise ConfigError(f'unknown operation "{flow.operation}"')
    if flow.trigger not in Trigger.values:
        raise ConfigError(f'unknown trigger "{flow.trigger}" (use realtime or scheduled)')
    values_check(flow, exclude=(*FIXED, "mapping"))
    problem = _retry_problem(flow)
    if problem:
        raise ConfigError(problem)
    flow.retry_on = sorted(set(flow.retry_on))  # one spelling per set: no change seen where none was made
    if Flow.objects.filter(name=flow.name).exclude(pk=flow.pk).exists():
        raise ConfigError(f'there is already a flow named "{flow.name}"')


def _cursor_field_set(*, model: DataModel, cursor_field: str, actor) -> None:
    """The poller reads the cursor field from the source model, so the choice is stored there."""
    if cursor_field and cursor_field != model.cursor_field:
        before = model.cursor_field
        model.cursor_field = cursor_field
        model.save(update_fields=["cursor_field", "updated_at"])
        audit_record(actor=actor, verb="update", target=model, diff={"cursor_field": [before, cursor_field]})


def flow_create(
    *,
    actor,
    name: str,
    source_model: DataModel,
    target_model: DataModel,
    event_type: str = "*",
    operation: str = Operation.UPSERT,
    trigger: str = Trigger.REALTIME,
    schedule_minutes: int | None = None,
    schedule_cron: str = "",
    cursor_field: str = "",
    filter: dict | None = None,
    description: str = "",
    mapping_name: str = "",
    tuning: dict[str, Any] | None = None,
) -> Flow:
    """A new flow in DRAFT, with its own mapping (no rules yet): the admin maps fields next.

    The mapping is named after the flow unless `mapping_name` is given; `tuning` sets any of TUNING.
    """
    unknown = set(tuning or {}) - set(TUNING)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))} (allowed: {', '.join(TUNING)})")
    flow = Flow(
        name=name.strip(),
        description=description.strip(),
        source_system=source_model.system,
        source_model=source_model,
        event_type=(event_type or "*").strip(),
        target_system=target_model.system,
        target_model=target_model,
        operation=operation,
        filter=filter or None,
        trigger=trigger,
        schedule_minutes=schedule_minutes,
        schedule_cron=(schedule_cron or "").strip(),
        state=FlowState.DRAFT,
        **(tuning or {}),
    )
    _check(flow)
    mapping = Mapping(
        name=(mapping_name or "").strip() or flow.name, source_model=source_model, target_model=target_model
    )
    values_check(mapping, exclude=("source_model", "target_model"))
    with transaction.atomic():
        mapping.save()
        flow.mapping = mapping
        flow.save()
        if trigger == Trigger.SCHEDULED:
            _cursor_field_set(model=source_model, cursor_field=cursor_field, actor=actor)
        audit_record(actor=actor, verb="create", target=flow, diff=flow_settings(flow))
    return flow


def flow_settings(flow: Flow) -> dict[str, Any]:
    """The flow's configuration as plain JSON, for audit diffs."""
    return {
        "source": f"{flow.source_system.slug}/{flow.source_model.name}",
        "target": f"{flow.target_system.slug}/{flow.target_model.name}",
        **{name: getattr(flow, name) for name in EDITABLE},
        "state": flow.state,
    }


def flow_update(*, flow: Flow, actor, cursor_field: str = "", **changes: Any) -> Flow:
    """Change the editable settings; the audit entry holds before/after of what changed."""
    if set(changes) & set(FIXED):
        raise ConfigError(
            "a flow's systems and data models cannot change, because its mapping is built for them; "
            "create a new flow instead"
        )
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ConfigError(f"these settings cannot be changed here: {', '.join(sorted(unknown))}")
    before = {name: getattr(flow, name) for name in EDITABLE}
    for name, value in changes.items():
        setattr(flow, name, value.strip() if isinstance(value, str) else value)
    flow.filter = flow.filter or None
    try:
        _check(flow)
    except ConfigError:
        for name, value in before.items():
            setattr(flow, name, value)
        raise
    diff = {
        name: [before[name], getattr(flow, name)] for name in EDITABLE if before[name] != getattr(flow, name)
    }
    with transaction.atomic():
        if diff:
            flow.save()
            audit_record(actor=actor, verb="update", target=flow, diff=diff)
        if flow.trigger == Trigger.SCHEDULED:
            _cursor_field_set(model=flow.source_model, cursor_field=cursor_field, actor=actor)
    return flow


def flow_enable(*, flow: Flow, actor) -> Flow:
    """Switch a draft flow on: the same checks and effects as resuming, audited as "enable"."""
    return flow_resume(flow=flow, actor=actor, verb="enable")


def flow_delete_blockers(flow: Flow) -> list[str]:
    """Why the flow cannot be deleted now (empty when it can)."""
    blockers = []
    # A draft has sent nothing: what waits for it (test events) goes with it.
    unfinished = Delivery.objects.for_flow(flow).unfinished().count() if flow.state != FlowState.DRAFT else 0
    if unfinished:
        blockers.append(
            f"{unfinished} deliveries are still being carried out; pause the flow and let them finish"
        )
    held = Delivery.objects.for_flow(flow).filter(status=DeliveryStatus.HELD).count()
    if held:
        blockers.append(
            f"{held} deliveries are held for review because their records changed shape; release "
            "them from the drift report first"
        )
    open_letters = flow.dead_letters.unresolved().count()
    if open_letters:
        blockers.append(f"{open_letters} dead letters are open; replay or discard them first")
    return blockers


def flow_delete(*, flow: Flow, actor) -> None:
    """Delete a flow with its delivery history, record links and cursor; its mapping too when unshared."""
    blockers = flow_delete_blockers(flow)
    if blockers:
        raise ConfigError("This flow cannot be deleted yet: " + "; ".join(blockers) + ".")
    with transaction.atomic():
        snapshot = flow_settings(flow)
        history = Delivery.objects.for_flow(flow).count()
        audit_record(
            actor=actor, verb="delete", target=flow, diff={**snapshot, "deliveries_deleted": history}
        )
        flow.dead_letters.all().delete()
        Delivery.objects.for_flow(flow).delete()
        mapping = flow.mapping
        flow.delete()
        if not mapping.flows.exists():
            mapping.delete()


def flow_poll_now(*, flow: Flow, actor) -> None:
    """Ask a worker to poll a scheduled flow now, instead of waiting for its schedule."""
    if flow.trigger != Trigger.SCHEDULED:
        raise ConfigError("Only scheduled flows are polled; real-time flows receive events as they happen.")
    if flow.state != FlowState.ACTIVE:
        raise ConfigError(f"The flow is {flow.get_state_display().lower()}; enable or resume it first.")
    from django_q.tasks import async_task

    with transaction.atomic():
        audit_record(actor=actor, verb="poll", target=flow, diff={})
        transaction.on_commit(
            lambda: async_task("hub.tasks.flow_poll_task", flow.pk, task_name=f"poll flow {flow.pk}")
        )


# --------------------------------------------------------------------------------------------------
# Filters back into the admin's text syntax
# --------------------------------------------------------------------------------------------------

_BARE = re.compile(r"[^\s,()\"'=<>!]+")
_OP_TEXT = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "exists": "exists",
    "not_exists": "not exists",
}


def condition_text(cond: Any) -> str | None:
    """A filter in the text syntax ('stage = won and amount > 100'), or None when the text would
    not read back to exactly the same condition (then show or store the structure instead)."""
    if not cond:
        return ""
    try:
        text = _text(cond)
        return text if parse_condition_text(text) == cond else None
    except (ConditionError, KeyError, TypeError, ValueError):
        return None


def _text(cond: dict, nested: bool = False) -> str:
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in cond:
            inner = joiner.join(_text(item, nested=True) for item in cond[key])
            return f"({inner})" if nested else inner
    if "not" in cond:
        return f"not {_text(cond['not'], nested=True)}"
    op, path = cond["op"], cond["path"]
    if op in ("exists", "not_exists"):
        return f"{path} {_OP_TEXT[op]}"
    value = cond["value"]
    shown = ", ".join(_value_text(v) for v in value) if op in ("in", "not_in") else _value_text(value)
    return f"{path} {_OP_TEXT[op]} {shown}"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        raise TypeError("no text form")
    if (
        _BARE.fullmatch(value)
        and value.lower() not in ("and", "or", "true", "false")
        and not _looks_numeric(value)
    ):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def flow_pause(*, flow: Flow, actor, reason: str = "") -> Flow:
    with transaction.atomic():
        before = flow.state
        flow.state = FlowState.PAUSED
        flow.paused_reason = (reason or f"paused by {getattr(actor, 'username', 'hub')}")[:300]
        flow.save(update_fields=["state", "paused_reason", "updated_at"])
        audit_record(
            actor=actor, verb="pause", target=flow, diff={"state": [before, flow.state], "reason": reason}
        )
    return flow


def flow_resume(*, flow: Flow, actor, verb: str = "resume") -> Flow:
    """Switch a paused (or draft) flow on; refused with the reasons while its mapping has problems."""
    _refuse_unready(flow, "This flow cannot be enabled yet")
    with transaction.atomic():
        before = flow.state
        flow.state = FlowState.ACTIVE
        flow.paused_reason = ""
        flow.save(update_fields=["state", "paused_reason", "updated_at"])
        audit_record(actor=actor, verb=verb, target=flow, diff={"state": [before, flow.state]})
    transaction.on_commit(kick_workers)
    return flow


def flow_state_set(*, flow: Flow, state: str, actor, reason: str = "") -> Flow:
    """Bring a flow to `state` the way its buttons do: enable a draft, resume or pause it.

    A flow that is active already is checked again, because its mapping may just have changed.
    A flow cannot go back to draft: that state means it has never run.
    """
    if state not in FlowState.values:
        raise ConfigError(f'unknown state "{state}" (use one of {", ".join(FlowState.values)})')
    if state == FlowState.ACTIVE:
        if flow.state == FlowState.ACTIVE:
            _refuse_unready(flow, "This flow cannot stay active")
            return flow
        if flow.state == FlowState.DRAFT:
            return flow_enable(flow=flow, actor=actor)
        return flow_resume(flow=flow, actor=actor)
    if state == flow.state:
        return flow
    if state == FlowState.PAUSED:
        return flow_pause(flow=flow, actor=actor, reason=reason)
    raise ConfigError("a flow that has been enabled cannot go back to draft; pause it instead")


def _refuse_unready(flow: Flow, headline: str) -> None:
    problems = flow_problems(flow)
    if problems:
        raise ConfigError(f"{headline}: " + "; ".join(problems) + ".")


class FlowProblem(str):
    """A reason a flow cannot run. When the reason is required target fields left unmapped, they
    are named in `unmapped`: the fix is in the mapper or in the target data model, where a field
    the target fills in itself may be marked required by mistake."""

    unmapped: tuple[str, ...] = ()

    @classmethod
    def unmapped_fields(cls, model, paths: list[str]) -> "FlowProblem":
        problem = cls(f"required fields of the {model.name} data model are not mapped: {', '.join(paths)}")
        problem.unmapped = tuple(paths)
        return problem


def flow_problems(flow: Flow) -> list[str]:
    """What keeps a flow from being enabled (an empty list when it is ready)."""
    problems = []
    version = flow.mapping.current_version
    if version is None or not version.rules:
        if flow.operation != "delete":
            problems.append("its mapping has no rules")
    else:
        problems.extend(error.message for error in validate_rules(version.rules))
        mapped_targets = {rule.get("target") for rule in version.rules}
        required = flow.target_model.fields.filter(required=True).values_list("path", flat=True)
        missing = [
            path
            for path in required
            if path not in mapped_targets
            and "[]" not in path
            and not any(t and t.startswith((path + ".", path + "[")) for t in mapped_targets)
        ]
        if missing and flow.operation in ("create", "upsert"):
            problems.append(FlowProblem.unmapped_fields(flow.target_model, missing))
    return problems
