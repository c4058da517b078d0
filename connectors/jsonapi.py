"""JSON:API (https://jsonapi.org), in `application/vnd.api+json`.

A record travels as a resource object, {"data": {"type": ..., "id": ..., "attributes": {...}}}, where
the type is the collection's name (the last segment of the resource path, "/people" -> "people").
Lists answer {"data": [...], "links": {"next": ...}} and the hub follows `links.next` as is. Records
reach mappings flat: {"id": ..., **attributes}. Errors answer {"errors": [{"title", "detail",
"source": {"pointer"}}]}.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from common.paths import get_path
from connectors.base import ConnectorConfig, ConnectorError, ErrorClass, Page
from connectors.config import query_parameter_setting
from connectors.http import HttpConnector, json_body, json_text, member_path

MEDIA_TYPE = "application/vnd.api+json"


@dataclass
class JsonApiConfig(ConnectorConfig):
    page_size_param: str = query_parameter_setting(
        "page[size]",
        label="Page size parameter",
        help="JSON:API leaves paging to the server; most use page[size] or page[limit].",
    )
    since_filter: str = query_parameter_setting(
        "filter[updated_since]",
        label="Changed-since filter",
        help="The filter that asks for records changed since the last poll.",
    )


class JsonApiConnector(HttpConnector):
    Config = JsonApiConfig
    media_type = MEDIA_TYPE

    limit_setting = "page_size_param"
    since_setting = "since_filter"

    def error_detail(self, body: Any) -> str:
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list):
            return super().error_detail(body)
        return "; ".join(_error_words(error) for error in errors if isinstance(error, dict))[:300]

    def create_request(self, resource: str, record: dict[str, Any]) -> tuple[str, str, Any]:
        return "POST", resource, {"data": {"type": resource_type(resource), "attributes": record}}

    def update_request(
        self, resource: str, target_id: str | None, record: dict[str, Any]
    ) -> tuple[str, str, Any]:
        data = {"type": resource_type(resource), "id": target_id, "attributes": record}
        return "PATCH", member_path(resource, target_id), {"data": data}

    def created_id(self, body: Any, id_path: str) -> Any:
        record = _flat(_data(body))
        return get_path(record, id_path) if record else None

    def keyed_create_request(self, resource: str, key: str, record: dict[str, Any]) -> tuple[str, str, Any]:
        # JSON:API's own upsert is a client-generated id: a second POST of it answers 409.
        return "POST", resource, {"data": {"type": resource_type(resource), "id": key, "attributes": record}}

    def lookup_parameter(self, field: str) -> str:
        return f"filter[{field}]"

    def fetch(self, *, resource: str, since: str | None, page_token: str | None, limit: int) -> Page:
        if page_token:  # the server's own next link carries every parameter
            return self.list_records(page_token, None)
        return self.list_records(resource, self.page_params(limit=limit, since=since))

    def list_records(self, path: str, params: dict[str, Any] | None) -> Page:
        response, exchange = self.request("GET", path, params=params)
        body = json_body(response, exchange)
        resources = _data(body)
        if not isinstance(resources, list):
            raise ConnectorError(
                "list answer has no data array", ErrorClass.MALFORMED_RESPONSE, exchange=exchange
            )
        link = get_path(body, "links.next")
        if isinstance(link, dict):  # JSON:API 1.1 allows a link object
            link = link.get("href")
        next_token = urljoin(response.url, link) if isinstance(link, str) and link else None
        records = [_flat(item) for item in resources]
        if None in records:
            raise ConnectorError(
                f"not a list of JSON:API resource objects: {self.redactor.text(json_text(resources), 80)}",
                ErrorClass.MALFORMED_RESPONSE,
                exchange=exchange,
            )
        return Page(records=records, next_token=next_token)


def resource_type(resource: str) -> str:
    """The JSON:API type of a collection path: "/v1/people/" -> "people"."""
    return resource.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


def _flat(resource: Any) -> dict[str, Any] | None:
    """A resource object as the flat record mappings read, {"id": ..., **attributes}; None when it
    is not one."""
    attributes = (resource.get("attributes") or {}) if isinstance(resource, dict) else None
    if not isinstance(attributes, dict):
        return None
    return {"id": resource.get("id"), **{k: v for k, v in attributes.items() if k != "id"}}


def _error_words(error: dict[str, Any]) -> str:
    words = str(error.get("detail") or error.get("title") or error.get("code") or "error")
    pointer = get_path(error, "source.pointer")
    return f"{words} (at {pointer})" if pointer else words
