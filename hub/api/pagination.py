"""API pages: limit and offset within common/limits.py, anything else answered 400 naming the bound.

DRF's own class takes any integer: limit=2**63+1 reaches the database as an overflowing LIMIT and
answers 500, and a negative or unreadable value silently becomes the default. Here a value outside
the bounds the schema declares (minimum and maximum) is refused with the bound in the message, so
a client learns the rule instead of reading a page it did not ask for.
"""

import re

from rest_framework import pagination
from rest_framework.exceptions import ValidationError

from common.limits import LIMITS
from hub.api.fields import refuse_repeated

_WHOLE = re.compile(r"[0-9]{1,20}")


def _bounded(raw: str, *, name: str, minimum: int, maximum: int) -> int:
    value = int(raw) if _WHOLE.fullmatch(raw) else None
    if value is None or not minimum <= value <= maximum:
        raise ValidationError(
            {name: [f"must be a whole number from {minimum} to {maximum:,}, not {raw[:40]!r}"]}
        )
    return value


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = LIMITS.api_page_size
    max_limit = LIMITS.api_max_limit
    max_offset = LIMITS.api_max_offset

    def get_limit(self, request) -> int:
        # Absent is the default; present, even empty or twice, it must be one whole number.
        if self.limit_query_param not in request.query_params:
            return self.default_limit
        refuse_repeated(request.query_params, [self.limit_query_param])
        raw = request.query_params[self.limit_query_param]
        return _bounded(raw, name=self.limit_query_param, minimum=1, maximum=self.max_limit)

    def get_offset(self, request) -> int:
        if self.offset_query_param not in request.query_params:
            return 0
        refuse_repeated(request.query_params, [self.offset_query_param])
        raw = request.query_params[self.offset_query_param]
        return _bounded(raw, name=self.offset_query_param, minimum=0, maximum=self.max_offset)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": self.max_offset, "default": 0},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
