"""Serializer fields that read input as strictly as the schema describes it."""

from rest_framework import serializers


class TextField(serializers.CharField):
    """A CharField that takes only text: DRF's own turns a JSON number into a string, so a client
    sending `{"reason": 0}` where the schema says string would not hear that it is wrong."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
