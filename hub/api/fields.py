"""Reading API input as strictly as the schema describes it."""

from collections.abc import Iterable

from rest_framework import serializers
from rest_framework.exceptions import ValidationError


class TextField(serializers.CharField):
    """A CharField that takes only text: DRF's own turns a JSON number into a string, so a client
    sending `{"reason": 0}` where the schema says string would not hear that it is wrong. The
    length limit applies to the text as sent, as the schema's maxLength does, not after trimming."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


def refuse_repeated(query_params, names: Iterable[str]) -> None:
    """A parameter given twice is a 400, not silently the last one."""
    repeated = {name: ["give this parameter once"] for name in names if len(query_params.getlist(name)) > 1}
    if repeated:
        raise ValidationError(repeated)


def read_query(serializer_class: type[serializers.Serializer], query_params) -> dict:
    """A list's query parameters, validated: each at most once, and an empty value refused like any
    other bad one (DRF would ignore it, as an HTML form's empty field)."""
    refuse_repeated(query_params, serializer_class().fields)
    params = serializer_class(data=query_params.dict())
    params.is_valid(raise_exception=True)
    return params.validated_data


class StrictBooleanField(serializers.BooleanField):
    """true or false in JSON, nothing else: DRF's own takes "yes", 1 and "on" as well."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON whole number: DRF's own takes "12" and 12.0 as well."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number: DRF's own takes "2.5" as well."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictDictField(serializers.DictField):
    """A JSON object whose keys are text; DRF's own takes a list of pairs as an empty object."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as text: DRF's own reads a number (false too) as the UUID of that integer."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
