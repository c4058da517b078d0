"""The generic REST/JSON connector: records are plain JSON objects; POST to create, PATCH (or PUT)
to update, DELETE to delete; lists page through a page parameter the answer names."""

from dataclasses import dataclass
from typing import Any

from common.paths import get_path
from connectors.base import ConnectorConfig, ConnectorError, ErrorClass, Page
from connectors.config import answer_path_setting, query_parameter_setting, setting
from connectors.http import HttpConnector, json_body, member_path

PAGING_HELP = "Used when the hub polls this system for changes."


@dataclass
class RestConfig(ConnectorConfig):
    update_method: str = setting(
        "PATCH",
        label="Update records with",
        help="PATCH sends the mapped fields; PUT replaces the whole record.",
        choices=("PATCH", "PUT"),
    )
    list_records_path: str = answer_path_setting(
        "data",
        label="Where a list answer keeps its records",
        help="A field such as data, or empty when the answer is the list itself.",
    )
    list_next_path: str = answer_path_setting(
        "next",
        label="Where a list answer names the next page",
        help="A field such as next or meta.next_page; empty when lists come in one page.",
    )
    since_param: str = query_parameter_setting(
        "updated_since", label="Changed-since parameter", help=PAGING_HELP
    )
    limit_param: str = query_parameter_setting("limit", label="Page size parameter", help=PAGING_HELP)
    page_param: str = query_parameter_setting(
        "page", label="Next page parameter", help="Carries the value the answer named as the next page."
    )


class RestConnector(HttpConnector):
    Config = RestConfig

    limit_setting = "limit_param"
    since_setting = "since_param"

    def update_request(
        self, resource: str, target_id: str | None, record: dict[str, Any]
    ) -> tuple[str, str, Any]:
        return self.config.update_method.upper(), member_path(resource, target_id), record

    def fetch(self, *, resource: str, since: str | None, page_token: str | None, limit: int) -> Page:
        params = self.page_params(limit=limit, since=since)
        if page_token:
            params[self.config.page_param] = page_token
        return self.list_records(resource, params)

    def list_records(self, path: str, params: dict[str, Any] | None) -> Page:
        response, exchange = self.request("GET", path, params=params)
        body = json_body(response, exchange)
        if isinstance(body, list):
            return Page(records=body, next_token=None)
        records_path, next_path = self.config.list_records_path, self.config.list_next_path
        records = get_path(body, records_path) if records_path else body
        if not isinstance(records, list):
            raise ConnectorError(
                f"list answer has no {records_path!r} array",
                ErrorClass.MALFORMED_RESPONSE,
                exchange=exchange,
            )
        next_token = get_path(body, next_path) if next_path else None
        return Page(records=records, next_token=str(next_token) if next_token else None)
