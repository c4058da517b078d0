from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models

from common.urlpaths import relative_path
from mappings.contracts import RuleIndex
from mappings.engine import CompiledMapping, compile_rules
from mappings.schema import FIELD_TYPES, FORMAT_WORDS, FORMATS, FieldSpec


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
    # The OpenAPI document the model was imported from, and the operation chosen in it
    # ("POST /crm/v3/objects/contacts"): requests to the system are checked against them.
    api_document = models.JSONField(null=True, blank=True)
    api_operation = models.CharField(
        max_length=400,
        blank=True,
        help_text="The operation of the API document this model was imported from, e.g. POST /contacts.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system__name", "name"]
        constraints = [models.UniqueConstraint(fields=["system", "name"], name="uniq_model_name_per_system")]

    def __str__(self) -> str:
        return f"{self.system.name} · {self.name}"

    def field_specs(self) -> list[FieldSpec]:
        return [field.spec() for field in self.fields.all()]


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
    # What the target accepts beyond the type; checked before a record is sent (mappings.contracts).
    format = models.CharField(
        max_length=20, blank=True, choices=[(f, f) for f in FORMATS], help_text="e.g. email or date-time."
    )
    enum = models.JSONField(default=list, blank=True, help_text="The only values allowed, if any.")
    min_length = models.PositiveIntegerField(null=True, blank=True)
    max_length = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["model", "position", "path"]
        constraints = [models.UniqueConstraint(fields=["model", "path"], name="uniq_field_path_per_model")]

    def __str__(self) -> str:
        return self.path

    def checks_words(self) -> str:
        """The checks beyond the type in plain words, after "Must be": "an email address · at most 100
        characters"."""
        words = [FORMAT_WORDS[self.format]] if self.format in FORMAT_WORDS else []
        if self.enum:
            shown = ", ".join(str(value) for value in self.enum[:8])
            words.append(f"one of: {shown}{', …' if len(self.enum) > 8 else ''}")
        low, high = self.min_length, self.max_length
        if low is not None and high is not None:
            words.append(f"{low}–{high} characters")
        elif high is not None:
            words.append(f"at most {high} characters")
        elif low:
            words.append(f"at least {low} characters")
        return " · ".join(words)

    def spec(self) -> FieldSpec:
        return FieldSpec(
            path=self.path,
            type=self.type,
            required=self.required,
            description=self.description,
            unit=self.unit,
            format=self.format,
            enum=tuple(self.enum or ()),
            min_length=self.min_length,
            max_length=self.max_length,
        )


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

    @cached_property
    def rule_index(self) -> RuleIndex:
        """Which rule writes which target field: what names the rule at fault in a violation."""
        return RuleIndex(self.rules)
