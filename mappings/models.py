from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models

from common.urlpaths import relative_path
from mappings.engine import CompiledMapping, compile_rules
from mappings.schema import FIELD_TYPES, FieldSpec


class DataModel(models.Model):
    """The shape of one kind of record in one system, e.g. the CRM's Deal."""

    system = models.ForeignKey("connectors.System", on_delete=models.CASCADE, related_name="data_models")
    name = models.CharField(max_length=100)
    resource_path = models.CharField(
        max_length=300,
        blank=True,
        validators=[relative_path],
        help_text="Where these records live in the system's API, e.g. /deals",
    )
    id_path = models.CharField(max_length=200, default="id", help_text="The field that identifies a record.")
    cursor_field = models.CharField(
        max_length=200, blank=True, default="updated_at", help_text="Field that grows when a record changes."
    )
    lookup_field = models.CharField(
        max_length=200,
        blank=True,
        help_text="The field where this system keeps our id for a record (an external id). The hub "
        "searches by it before creating a record again whose first create may have arrived.",
    )
    lookup_param = models.CharField(
        max_length=200,
        blank=True,
        help_text="The query parameter that searches the list by that field, e.g. external_id.",
    )
    create_by_key = models.BooleanField(
        default=False,
        help_text="The system creates or replaces a record with PUT <resource>/<external id>, so "
        "sending a create twice cannot make two records.",
    )
    api_version = models.CharField(
        "API version",
        max_length=40,
        blank=True,
        help_text="The version of the system's API this model describes; empty: whichever the system uses.",
    )
    sample = models.JSONField(null=True, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system__name", "name"]
        constraints = [models.UniqueConstraint(fields=["system", "name"], name="uniq_model_name_per_system")]

    def __str__(self) -> str:
        return f"{self.system.name} · {self.name}"

    def field_specs(self) -> list[FieldSpec]:
        return [
            FieldSpec(path=f.path, type=f.type, required=f.required, description=f.description, unit=f.unit)
            for f in self.fields.all()
        ]


class Field(models.Model):
    model = models.ForeignKey(DataModel, on_delete=models.CASCADE, related_name="fields")
    path = models.CharField(max_length=300)
    type = models.CharField(max_length=20, choices=[(t, t) for t in FIELD_TYPES], default="string")
    required = models.BooleanField(default=False)
    description = models.CharField(max_length=300, blank=True)
    unit = models.CharField(
        max_length=60,
        blank=True,
        help_text="What a value counts or how it is written, e.g. in cents (minor units), or kg.",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["model", "position", "path"]
        constraints = [models.UniqueConstraint(fields=["model", "path"], name="uniq_field_path_per_model")]

    def __str__(self) -> str:
        return self.path


class Mapping(models.Model):
    """The rules that turn a source model's record into a target model's record; every save is a version."""

    name = models.CharField(max_length=200)
    source_model = models.ForeignKey(DataModel, on_delete=models.PROTECT, related_name="+")
    target_model = models.ForeignKey(DataModel, on_delete=models.PROTECT, related_name="+")
    current_version = models.ForeignKey(
        "MappingVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def rules(self) -> list[dict[str, Any]]:
        return self.current_version.rules if self.current_version else []


class MappingVersion(models.Model):
    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    rules = models.JSONField(default=list)
    diff = models.JSONField(default=list, blank=True)
    comment = models.CharField(max_length=300, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mapping", "-number"]
        constraints = [models.UniqueConstraint(fields=["mapping", "number"], name="uniq_mapping_version")]

    def __str__(self) -> str:
        return f"{self.mapping} v{self.number}"

    @cached_property
    def compiled(self) -> CompiledMapping:
        return compile_rules(self.rules)
