"""The small contract every connector implements, and the failure taxonomy it reports in."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from common.urlpaths import relative_path
from connectors.config import config_load, setting, url_path

if TYPE_CHECKING:
    from connectors.deprecation import DeprecationNotice
    from connectors.models import System


class ErrorClass(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILURE = "auth_failure"
    OUTBOUND_REFUSED = "outbound_refused"
    REJECTED = "rejected"
    MALFORMED_RESPONSE = "malformed_response"
    OUTCOME_UNKNOWN = "outcome_unknown"
    MAPPING_ERROR = "mapping_error"
    CONTRACT_VIOLATION = "contract_violation"
    SCHEMA_DRIFT = "schema_drift"
    UNKNOWN = "unknown"

    @property
    def retryable(self) -> bool:
        return self in RETRYABLE

    @property
    def pauses_flow(self) -> bool:
        """Failures that will repeat for every delivery until a person fixes the configuration."""
        return self in (ErrorClass.AUTH_FAILURE, ErrorClass.OUTBOUND_REFUSED)

    @property
    def description(self) -> str:
        return ERROR_DESCRIPTIONS[self]

    @property
    def next_step(self) -> str:
        """What a person does about it, in plain words."""
        return ERROR_NEXT_STEPS[self]


RETRYABLE = frozenset(
    {
        ErrorClass.UNREACHABLE,
        ErrorClass.TIMEOUT,
        ErrorClass.SERVER_ERROR,
        ErrorClass.RATE_LIMITED,
        ErrorClass.MALFORMED_RESPONSE,
        ErrorClass.OUTCOME_UNKNOWN,
        ErrorClass.UNKNOWN,
    }
)

ERROR_DESCRIPTIONS = {
    ErrorClass.UNREACHABLE: "The system could not be reached (connection refused or dropped).",
    ErrorClass.TIMEOUT: "The system did not answer in time.",
    ErrorClass.SERVER_ERROR: "The system answered with a server error (5xx).",
    ErrorClass.RATE_LIMITED: "The system asked us to slow down (429).",
    ErrorClass.AUTH_FAILURE: "The system refused our credentials (401/403).",
    ErrorClass.OUTBOUND_REFUSED: "The hub's outbound policy does not allow connecting to the system's address.",
    ErrorClass.REJECTED: "The system rejected the record (4xx).",
    ErrorClass.MALFORMED_RESPONSE: "The system's answer could not be understood.",
    ErrorClass.OUTCOME_UNKNOWN: "The request was sent but no answer came back: it may or may not have "
    "taken effect.",
    ErrorClass.MAPPING_ERROR: "The mapping could not produce a valid record.",
    ErrorClass.CONTRACT_VIOLATION: "The mapped record breaks what the target accepts.",
    ErrorClass.SCHEMA_DRIFT: "The record no longer matches its data model.",
    ErrorClass.UNKNOWN: "An unexpected error.",
}

ERROR_NEXT_STEPS = {
    ErrorClass.UNREACHABLE: "Check that the system is running and that its address is right (Test connection on "
    "its page); the hub tries again by itself.",
    ErrorClass.TIMEOUT: "The hub tries again by itself; if it keeps happening, give the system longer to answer "
    "on its page.",
    ErrorClass.SERVER_ERROR: "The fault is in the system itself; the hub tries again by itself. Once the system "
    "works again, replay what is left.",
    ErrorClass.RATE_LIMITED: "The hub slows down and tries again by itself; if it keeps happening, lower "
    "'Calls at once' on the system's page.",
    ErrorClass.AUTH_FAILURE: "Enter the system's current credentials on its page, then resume its flows.",
    ErrorClass.OUTBOUND_REFUSED: "Ask whoever runs the hub to allow this system's address, then resume its flows.",
    ErrorClass.REJECTED: "Read the system's answer, then correct the record (or the mapping) and replay it.",
    ErrorClass.MALFORMED_RESPONSE: "Check that the system's address points at its API rather than a web page, "
    "then replay.",
    ErrorClass.OUTCOME_UNKNOWN: "Look in the target for the record, then say that it arrived or send it again.",
    ErrorClass.MAPPING_ERROR: "Correct the rule in the field mapper, or correct the record, then replay it.",
    ErrorClass.CONTRACT_VIOLATION: "Correct the rule the reason names in the field mapper (or the record, or the "
    "data model if the target accepts it after all), then replay it: nothing reached the target.",
    ErrorClass.SCHEMA_DRIFT: "Update the data model to the record's new shape, then replay.",
    ErrorClass.UNKNOWN: "Replay it; if it fails again, give the details below to whoever runs the hub.",
}


def failure_reason(lead: str, detail: str) -> str:
    """One message from why the hub stopped and what the system or mapping said: "The mapping
    could not produce a valid record: the mapped record does not fit …", never ".:" nor the same
    words twice."""
    lead, detail = lead.strip().rstrip(".:; ").strip(), detail.strip().lstrip(":; ").strip()
    if lead and detail.lower().startswith(lead.lower()):
        lead = ""
    if not detail:
        text = f"{lead}." if lead else ""
    elif not lead:
        text = detail
    else:
        text = f"{lead}: {detail}"
    return text[:1].upper() + text[1:]


class ConnectorError(Exception):
    """A named failure talking to a system; `retry_after` is the system's own hint in seconds."""

    def __init__(
        self,
        message: str,
        error_class: ErrorClass,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        exchange: "Exchange | None" = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = ErrorClass(error_class)
        self.retry_after = retry_after
        self.status = status
        self.exchange = exchange


@dataclass
class Exchange:
    """A redacted summary of one HTTP request and its response, kept with each attempt."""

    method: str = ""
    url: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    duration_ms: float = 0.0
    # What the answer's headers said about the operation's deprecation (connectors.deprecation).
    deprecation: "DeprecationNotice | None" = None

    def request_summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": self.request_headers,
            "body": self.request_body,
        }

    def response_summary(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.response_headers, "body": self.response_body}


@dataclass
class PushResult:
    target_id: str
    status: int
    body: Any
    exchange: Exchange
    replayed: bool = False


@dataclass
class LookupResult:
    """What a search by external id found: the ids of the matching records, and how many records
    the system listed in all (more than matched: it ignored the search parameter)."""

    target_ids: list[str]
    listed: int


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_token: str | None


@dataclass
class ConnectorConfig:
    """Settings every connector has. A connector's own `Config` extends it with its settings."""

    health_path: str = setting(
        "",
        label="Path to test the connection",
        help="A path that needs sign-in, e.g. /deals. Used by “Test connection” until the system has "
        "a data model.",
        validators=(url_path, relative_path),
    )


class Connector:
    """Talks to one kind of API: exactly the three calls the hub makes, with keyword arguments.

    `Config` is the dataclass of this connector's settings, kept in `System.settings` and read here
    as `self.config`; the system form shows an input for each. Over HTTP, subclass
    connectors.http.HttpConnector (see connectors/jsonapi.py)."""

    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, system: "System") -> None:
        self.system = system
        self.config = config_load(self.Config, system.settings)

    def check(self, *, path: str) -> "CheckResult":
        """Try the system at `path` and say whether it answered and accepted our credentials."""
        raise NotImplementedError(f"{type(self).__name__} must implement check(*, path)")

    def push(
        self,
        *,
        operation: str,
        resource: str,
        record: dict[str, Any],
        target_id: str | None,
        idempotency_key: str,
        id_path: str = "id",
        key: str | None = None,
    ) -> PushResult:
        """Create, update or delete one record at `resource`; `operation` is "create", "update" or
        "delete", and `target_id` names the record for the last two. A create with `key` uses the
        system's own upsert by that key. A create answered with success but no readable id
        returns target_id "": it must not raise, since the record exists."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement push(*, operation, resource, record, target_id, "
            "idempotency_key, id_path, key)"
        )

    def lookup(
        self, *, resource: str, param: str, field: str, value: str, id_path: str = "id"
    ) -> LookupResult:
        """Search `resource` for records whose `field` equals `value`, asking with query parameter
        `param`: how the hub finds out whether a create whose answer was lost took effect."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement lookup(*, resource, param, field, value, id_path)"
        )

    def lookup_parameter(self, field: str) -> str:
        """The query parameter this kind of API would search a list by `field` with."""
        return field

    def fetch(self, *, resource: str, since: str | None, page_token: str | None, limit: int) -> Page:
        """One page of the records at `resource` changed since `since`; `page_token` is the previous
        page's `next_token`."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement fetch(*, resource, since, page_token, limit)"
        )

    def sample(self, *, resource: str) -> dict[str, Any] | None:
        """One record of `resource` as flows read it, listed with the stored credentials (None
        when the list is empty): how an admin starts a data model from the system itself."""
        page = self.fetch(resource=resource, since=None, page_token=None, limit=1)
        if not page.records:
            return None
        record = page.records[0]
        if not isinstance(record, dict):
            raise ConnectorError(
                f"the list at {resource} holds {type(record).__name__} values, not records",
                ErrorClass.MALFORMED_RESPONSE,
            )
        return record

    def document(self, *, path: str) -> str:
        """The text the system publishes at `path` (its API description), fetched with the stored
        credentials."""
        raise NotImplementedError(f"{type(self).__name__} cannot fetch documents")


@dataclass
class CheckResult:
    reachable: bool
    authenticated: bool | None
    duration_ms: float
    message: str
    status: int | None = None
    refused: str = ""  # the outbound policy's words when it refused the connection
    deprecation: "DeprecationNotice | None" = None  # what the answer said about its retirement
