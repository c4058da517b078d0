"""Systems: register, read, change, delete and test them.

Credentials and the webhook signing secret are write-only: accepted on create and change, never
answered (`credentials_set` names the ones stored). A body is checked by the same form as the
Systems page (hub/ui/forms/systems.py), then saved by the same services, so a rule the page
enforces holds here too and the audit entry is the same.
"""

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from connectors.apiversion import VersionIn
from connectors.auth import AUTH_SCHEMES
from connectors.models import SignatureEncoding, SignatureScheme, System, SystemKind
from connectors.registry import connector_choices
from hub.api.errors import StrictJSONParser
from hub.api.fields import (
    StrictDictField,
    StrictFloatField,
    StrictIntegerField,
    TextField,
    read_query,
)
from hub.api.model_sources import OfferedModelSerializer
from hub.api.writes import RolesByAction, refusals
from hub.roles import IsAdminOnly, IsAdminRole, IsOperator
from hub.services.systems import (
    ConnectionReport,
    system_create,
    system_delete,
    system_test_connection,
    system_update,
)
from hub.services.vendor_models import offered_models
from hub.ui.forms.systems import SystemForm, template_form_values

# What a client sets, besides the secrets; each is a System field (connectors/models.py).
WRITABLE = (
    "name", "slug", "kind", "connector", "base_url", "api_version", "api_version_in", "api_version_name",
    "vendor_template", "auth_scheme", "auth_config",
    "rate_limit_per_second", "max_in_flight", "connect_timeout", "read_timeout", "signature_scheme",
    "signature_header", "signature_encoding", "signature_prefix", "signature_tolerance_seconds",
    "event_type_path", "idempotency_key_path", "record_path", "settings",
)  # fmt: skip
SETTINGS_OF = {"auth_scheme": "auth_config", "connector": "settings"}  # a choice -> its settings field
WRITE_ONLY = "Write-only: accepted here, never answered; an empty value keeps what is stored."


class ScalarField(serializers.Field):
    """A setting's value: text, a whole number or true/false, as the settings declare them."""

    default_error_messages = {"invalid": "Give text, a whole number, or true or false."}

    def to_internal_value(self, data):
        if isinstance(data, float) or not isinstance(data, str | int | bool):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > 500:
            raise ValidationError("At most 500 characters.")
        return data

    def to_representation(self, value):
        return value


SCALAR = {"oneOf": [{"type": "string", "maxLength": 500}, {"type": "integer"}, {"type": "boolean"}]}


@extend_schema_field({"type": "object", "additionalProperties": SCALAR})
class SettingsField(StrictDictField):
    """The declared settings of the chosen sign-in method or connector, by key."""

    child = ScalarField()


def _text(max_length: int, **kwargs: Any) -> TextField:
    return TextField(required=False, max_length=max_length, **kwargs)


class SystemSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = TextField(max_length=100, help_text="How people here call it, e.g. “Sales CRM”.")
    slug = _text(
        60,
        allow_blank=True,
        help_text="Part of the webhook URL /hooks/<slug>/; made from the name when empty.",
    )
    kind = serializers.ChoiceField(choices=SystemKind.choices, required=False)
    connector = serializers.ChoiceField(choices=[], required=False, help_text="How the hub talks to its API.")
    base_url = _text(500, allow_blank=True, help_text="Where its API lives, e.g. https://api.example.com/v2.")
    api_version = _text(40, allow_blank=True)
    api_version_in = serializers.ChoiceField(
        choices=VersionIn.choices, required=False, help_text="Where each call carries the API version."
    )
    api_version_name = _text(
        100, allow_blank=True, help_text="The header's or query parameter's name, e.g. X-Api-Version."
    )
    vendor_template = _text(
        60,
        allow_blank=True,
        help_text="The vendor template it is set up from (e.g. hubspot): its data models are offered "
        "and its webhook handshakes answered. On create it also fills what the body leaves out.",
    )
    auth_scheme = serializers.ChoiceField(
        choices=[(str(k), m.label) for k, m in AUTH_SCHEMES.items()], required=False
    )
    auth_config = SettingsField(
        required=False,
        help_text="The sign-in method's settings (not secret), e.g. the API key's header name.",
    )
    credentials = StrictDictField(
        child=TextField(max_length=2000, allow_blank=True),
        required=False,
        write_only=True,
        help_text='The sign-in method\'s secrets by key, e.g. {"api_key": "…"}. ' + WRITE_ONLY,
    )
    credentials_set = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The credential keys stored (never their values).",
    )
    rate_limit_per_second = StrictFloatField(required=False, allow_null=True, min_value=0.01, max_value=10000)
    max_in_flight = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=1000)
    connect_timeout = StrictFloatField(required=False, min_value=0.1, max_value=60)
    read_timeout = StrictFloatField(required=False, min_value=0.1, max_value=300)
    signature_scheme = serializers.ChoiceField(choices=SignatureScheme.choices, required=False)
    signature_header = _text(100, allow_blank=True)
    signature_encoding = serializers.ChoiceField(choices=SignatureEncoding.choices, required=False)
    signature_prefix = _text(40, allow_blank=True)
    signature_tolerance_seconds = StrictIntegerField(required=False, min_value=1, max_value=86400)
    webhook_secret = TextField(
        required=False, allow_blank=True, max_length=500, write_only=True,
        help_text="The secret the vendor signs its webhooks with. " + WRITE_ONLY,
    )  # fmt: skip
    webhook_secret_set = serializers.BooleanField(read_only=True)
    event_type_path = _text(200, allow_blank=True)
    idempotency_key_path = _text(200, allow_blank=True)
    record_path = _text(200, allow_blank=True)
    settings = SettingsField(required=False, help_text="The connector's settings, e.g. its pagination.")
    webhook_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connector"].choices = connector_choices()  # the registry, as the page lists it

    def get_webhook_url(self, system: System) -> str:
        return settings.HUB_INGEST_URL.rstrip("/") + reverse("hooks-receive", args=[system.slug])

    def to_representation(self, system: System) -> dict[str, Any]:
        data = super().to_representation(system)
        data["credentials_set"] = [name for name in system.auth_secrets() if system.has_secret(name)]
        data["webhook_secret_set"] = system.has_secret("webhook_secret")
        return data


class SystemUpdateSerializer(SystemSerializer):
    """A change names only what changes; the rest stays."""

    name = TextField(max_length=100, required=False)


# --------------------------------------------------------------------------------------------------
# The body as the system form reads it
# --------------------------------------------------------------------------------------------------


def _form_data(body: dict[str, Any], system: System | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The system form's inputs for this body: the stored (or default) values, on create the vendor
    template's, then the body's. The declared settings go to their inputs by key, the credentials to
    theirs. Returns the data and the problems with keys no input takes."""
    probe = SystemForm(instance=system)
    current = system or System()
    data: dict[str, Any] = {name: getattr(current, name) for name in SystemForm._meta.fields}
    template = body.get("vendor_template") or ""
    if system is None and template:
        data["template"] = template  # the register form's chooser; an unknown one is its error
        data |= template_form_values().get(template, {}).get("values", {})
    data |= {name: value for name, value in body.items() if name in data}
    problems: dict[str, list[str]] = {}
    for choice_field, stored_in in SETTINGS_OF.items():
        chosen = data[choice_field]
        given = dict(body.get(stored_in, {}))
        for name, found in probe.declared.items():
            if found.choice.field != choice_field or chosen not in found.owners:
                continue
            if found.item.key in given:
                data[name] = given.pop(found.item.key)
            elif name not in data and probe.initial.get(name) is not None:
                data[name] = probe.initial[name]  # unsaid: kept (a checkbox left out would read "off")
        for key in given:
            problems.setdefault(stored_in, []).append(
                f"“{key}” is not a setting of {choice_field} “{chosen}”."
            )
    method = AUTH_SCHEMES.get(data["auth_scheme"])
    for key, value in body.get("credentials", {}).items():
        if method is None or key not in method.secrets:
            takes = ", ".join(method.secrets) if method and method.secrets else "none"
            problems.setdefault("credentials", []).append(
                f"“{key}” is not a credential of the sign-in method “{data['auth_scheme']}” (it takes: {takes})."
            )
        else:
            data[key] = value
    data["webhook_secret"] = body.get("webhook_secret", "")
    return {k: v for k, v in data.items() if v is not None}, problems


def _api_errors(form: SystemForm) -> dict[str, list[str]]:
    """The form's errors by API field: a declared setting as auth_config.<key> or settings.<key>,
    a secret as credentials.<key>."""
    found: dict[str, list[str]] = {}
    for name, errors in form.errors.items():
        if name in form.declared:
            declared = form.declared[name]
            name = f"{declared.choice.stored_in}.{declared.item.key}"
        elif name in form.secrets:
            name = f"credentials.{name}"
        elif name == "__all__":
            name = "non_field_errors"
        found.setdefault(name, []).extend(str(error) for error in errors)
    return found


def _checked_form(body: dict[str, Any], system: System | None) -> SystemForm:
    data, problems = _form_data(body, system)
    form = SystemForm(data, instance=system)
    if problems or not form.is_valid():
        raise ValidationError(problems | (_api_errors(form) if not problems else {}))
    return form


# --------------------------------------------------------------------------------------------------
# Test connection
# --------------------------------------------------------------------------------------------------


class TestConnectionSerializer(serializers.Serializer):
    path = TextField(
        required=False, allow_blank=True, max_length=300,
        help_text="The path to try, e.g. /deals; the first data model's resource when left out.",
    )  # fmt: skip


class LookupCheckSerializer(serializers.Serializer):
    model = serializers.CharField()
    level = serializers.ChoiceField(choices=["ok", "warn", "bad"])
    text = serializers.CharField()


class ConnectionReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    level = serializers.ChoiceField(choices=["ok", "warn", "bad"])
    headline = serializers.CharField(help_text="What happened, in plain words.")
    path = serializers.CharField()
    reachable = serializers.BooleanField(allow_null=True)
    authenticated = serializers.BooleanField(allow_null=True)
    status = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())
    technical = serializers.CharField(allow_blank=True)
    lookups = LookupCheckSerializer(many=True)


class SystemFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=SystemKind.choices, required=False, help_text="Only systems of this kind."
    )


class SystemViewSet(
    RolesByAction,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Registered systems: everyone with a role reads; admins register, change and delete;
    operators test the connection."""

    serializer_class = SystemSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    action_roles = {"test_connection": IsOperator, "template_models": IsAdminOnly}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        systems = System.objects.order_by("name")
        if self.action == "list":
            filters = read_query(SystemFilterSerializer, self.request.query_params)
            if "kind" in filters:
                systems = systems.filter(kind=filters["kind"])
        return systems

    def get_serializer_class(self):
        return SystemUpdateSerializer if self.action == "partial_update" else SystemSerializer

    @extend_schema(parameters=[SystemFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={201: SystemSerializer})
    def create(self, request, *args, **kwargs):
        body = SystemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = _checked_form(body.validated_data, None)
        with refusals():
            system = system_create(
                fields=form.system_fields(),
                credentials=form.credentials(),
                webhook_secret=form.webhook_secret_value(),
                actor=request.user,
            )
        return Response(SystemSerializer(system).data, status=201)

    @extend_schema(responses={200: SystemSerializer})
    def partial_update(self, request, *args, **kwargs):
        system = self.get_object()
        body = SystemUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = _checked_form(body.validated_data, system)
        with refusals():
            system = system_update(
                system=system,
                fields=form.system_fields(),
                credentials=form.credentials(),
                webhook_secret=form.webhook_secret_value(),
                actor=request.user,
            )
        return Response(SystemSerializer(system).data)

    @extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(description="Flows, mappings or event history keep it: why."),
        }
    )
    def destroy(self, request, *args, **kwargs):
        system = self.get_object()
        with refusals(conflict=True):
            system_delete(system=system, actor=request.user)
        return Response(status=204)

    @extend_schema(
        request=TestConnectionSerializer,
        responses=ConnectionReportSerializer,
        description="Call the system the way a delivery would and say what happened (audited). "
        "A system that cannot be reached is a 200 with ok false and the reason in `headline`.",
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None, format=None):
        system = self.get_object()
        body = TestConnectionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = system_test_connection(
            system=system, path=body.validated_data.get("path", ""), actor=request.user
        )
        return Response(_report_json(report))

    @extend_schema(
        responses=OfferedModelSerializer(many=True),
        description="The data models the system's vendor template offers (none for a system not set "
        "up from one); create one with POST /api/v1/models/from-template/. Admins only, as the "
        "new-data-model page.",
    )
    @action(detail=True, methods=["get"], url_path="template-models", pagination_class=None)
    def template_models(self, request, pk=None, format=None):
        offers = offered_models(self.get_object())
        return Response(OfferedModelSerializer(offers, many=True).data)


def _report_json(report: ConnectionReport) -> dict[str, Any]:
    return {
        "ok": report.ok, "level": report.level, "headline": report.headline, "path": report.path,
        "reachable": report.reachable, "authenticated": report.authenticated, "status": report.status,
        "duration_ms": report.duration_ms, "notes": report.notes, "technical": report.technical,
        "lookups": [{"model": c.model, "level": c.level, "text": c.text} for c in report.lookups],
    }  # fmt: skip
