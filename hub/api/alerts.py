"""Alerts, alert rules and alert channels: read alerts and acknowledge, mute or unmute them (ops);
create, read, change and delete rules and channels, and send a channel a test (admins). The same
services as the Alerts pages (hub/alerts/services.py), so the same checks and audit entries.

A channel's secrets (a webhook URL with a chat tool's token in it, a signing secret) are
write-only: accepted, stored encrypted, never answered; `secrets_set` names the ones stored."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hub.alerts.channels import CHANNELS
from hub.alerts.conditions import CONDITIONS
from hub.alerts.models import Alert, AlertRule, Channel
from hub.alerts.services import (
    MAX_RENOTIFY_MINUTES,
    MUTE_CHOICES,
    RULE_FIELDS,
    alert_acknowledge,
    alert_mute,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_unmute,
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
)
from hub.api.errors import StrictJSONParser
from hub.api.fields import (
    StrictBooleanField,
    StrictDictField,
    StrictFloatField,
    StrictIntegerField,
    TextField,
    read_query,
    refuse_repeated,
)
from hub.api.writes import RolesByAction, refusals
from hub.models import Flow, FlowState
from hub.roles import IsAdminRole, IsOperator

# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------


class AlertRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    flow = serializers.PrimaryKeyRelatedField(
        queryset=Flow.objects.all(), help_text="The flow watched (not a draft: it has nothing to watch yet)."
    )
    kind = serializers.ChoiceField(choices=[(kind, c.label) for kind, c in CONDITIONS.items()])
    threshold = StrictFloatField(
        required=False,
        allow_null=True,
        help_text="Percent, seconds or deliveries, by kind; the kind's default when left out.",
    )
    window_minutes = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    renotify_minutes = StrictIntegerField(
        required=False, min_value=0, max_value=MAX_RENOTIFY_MINUTES, help_text="0: tell once."
    )
    enabled = StrictBooleanField(required=False, default=True)
    sentence = serializers.SerializerMethodField(help_text="The rule in words, after the flow's name.")
    muted_until = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_sentence(self, rule: AlertRule) -> str:
        return rule.describe()

    def validate_flow(self, flow: Flow) -> Flow:
        if flow.state == FlowState.DRAFT:
            raise ValidationError("This flow is a draft: enable it before watching it.")
        return flow


class AlertRuleChangeSerializer(serializers.Serializer):
    threshold = StrictFloatField(required=False, allow_null=True)
    window_minutes = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    renotify_minutes = StrictIntegerField(required=False, min_value=0, max_value=MAX_RENOTIFY_MINUTES)
    enabled = StrictBooleanField(required=False)


class AlertRuleFilterSerializer(serializers.Serializer):
    flow = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only this flow's rules."
    )


def _with_defaults(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """A number left out is the kind's default, as the rule form starts with it."""
    condition = CONDITIONS[kind]
    return {**{param.field: param.default for param in condition.params}, **values}


class AlertRuleViewSet(
    RolesByAction,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Everyone with a role reads; admins change (as on the Alerts pages)."""

    serializer_class = AlertRuleSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        rules = AlertRule.objects.select_related("flow").order_by("flow__name", "id")
        if self.action == "list":
            filters = read_query(AlertRuleFilterSerializer, self.request.query_params)
            if "flow" in filters:
                rules = rules.filter(flow_id=filters["flow"])
        return rules

    @extend_schema(parameters=[AlertRuleFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={201: AlertRuleSerializer})
    def create(self, request, *args, **kwargs):
        body = AlertRuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        flow, kind = data.pop("flow"), data.pop("kind")
        with refusals():
            rule = alert_rule_create(flow=flow, kind=kind, actor=request.user, **_with_defaults(kind, data))
        return Response(AlertRuleSerializer(rule).data, status=201)

    @extend_schema(request=AlertRuleChangeSerializer, responses=AlertRuleSerializer)
    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        body = AlertRuleChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = {name: body.validated_data[name] for name in RULE_FIELDS if name in body.validated_data}
        with refusals():
            rule = alert_rule_update(rule=rule, actor=request.user, **changes)
        return Response(AlertRuleSerializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        alert_rule_delete(rule=self.get_object(), actor=request.user)
        return Response(status=204)


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------

WRITE_ONLY = "Write-only: accepted here, never answered; left out or empty, the stored value stays."
SETTING_NAMES = sorted({s.name for kind in CHANNELS.values() for s in kind.settings if not s.secret})
SECRET_NAMES = sorted({s.name for kind in CHANNELS.values() for s in kind.settings if s.secret})


@extend_schema_field(
    {
        "type": "object",
        "properties": {name: {"type": "string", "maxLength": 2000} for name in SETTING_NAMES},
        "additionalProperties": False,
        "description": "The kind's settings: email takes `to` (addresses separated by commas).",
    }
)
class ChannelSettingsField(StrictDictField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "properties": {name: {"type": "string", "maxLength": 2000} for name in SECRET_NAMES},
        "additionalProperties": False,
        "writeOnly": True,
        "description": "The kind's secrets: a webhook takes `url` and `signing_secret` (made when left out). "
        + WRITE_ONLY,
    }
)
class ChannelSecretsField(StrictDictField):
    pass


class ChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=[(kind, cls.label) for kind, cls in CHANNELS.items()])
    name = TextField(max_length=100)
    enabled = StrictBooleanField(default=True)
    settings = ChannelSettingsField(child=TextField(max_length=2000, allow_blank=True), required=False)
    secrets = ChannelSecretsField(
        child=TextField(max_length=2000, allow_blank=True), required=False, write_only=True
    )
    secrets_set = serializers.SerializerMethodField(help_text="The secrets stored (never their values).")
    destination = serializers.SerializerMethodField(
        help_text="Where it sends, as the page shows it (no secrets)."
    )
    last_sent_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_ok = serializers.BooleanField(read_only=True, allow_null=True)
    last_result = serializers.CharField(read_only=True)

    def get_secrets_set(self, channel: Channel) -> list[str]:
        return sorted(name for name, value in (channel.secrets or {}).items() if value)

    def get_destination(self, channel: Channel) -> str:
        return channel.sender().destination()

    def to_representation(self, channel: Channel) -> dict[str, Any]:
        data = super().to_representation(channel)
        data["settings"] = {
            key: ", ".join(v) if isinstance(v, list) else v for key, v in channel.settings.items()
        }
        return data


class ChannelChangeSerializer(ChannelSerializer):
    kind = None  # a channel keeps its kind
    name = TextField(max_length=100, required=False)
    enabled = StrictBooleanField(required=False)


class ChannelTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    result = serializers.CharField(help_text="What the receiver or the mail server said, in words.")


def _values(kind: str, data: dict[str, Any], channel: Channel | None) -> dict[str, str]:
    """The channel form's values: settings and secrets by name, the stored ones where left out
    (an empty secret keeps the stored one, as on the page)."""
    known = {s.name: s for s in CHANNELS[kind].settings}
    problems = {}
    for group, secret in (("settings", False), ("secrets", True)):
        for name in data.get(group, {}):
            if name not in known or known[name].secret != secret:
                problems.setdefault(group, []).append(
                    f"“{name}” is not one of the {group} of a {kind} channel."
                )
    if problems:
        raise ValidationError(problems)
    current = ChannelSerializer(channel).data["settings"] if channel else {}
    return {
        name: {**current, **data.get("settings", {}), **data.get("secrets", {})}.get(name, "")
        for name in known
    }


class ChannelViewSet(
    RolesByAction,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Everyone with a role reads; admins change and test (as on the Alerts pages)."""

    serializer_class = ChannelSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminRole]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = Channel.objects.order_by("name")

    @extend_schema(responses={201: ChannelSerializer})
    def create(self, request, *args, **kwargs):
        body = ChannelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with refusals():
            channel = channel_create(
                kind=data["kind"], name=data["name"], enabled=data["enabled"],
                values=_values(data["kind"], data, None), actor=request.user,
            )  # fmt: skip
        return Response(ChannelSerializer(channel).data, status=201)

    @extend_schema(request=ChannelChangeSerializer, responses=ChannelSerializer)
    def partial_update(self, request, *args, **kwargs):
        channel = self.get_object()
        body = ChannelChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with refusals():
            try:
                channel = channel_update(
                    channel=channel, name=data.get("name", channel.name), enabled=data.get("enabled", channel.enabled),
                    values=_values(channel.kind, data, channel), actor=request.user,
                )  # fmt: skip
            except Exception:
                channel.refresh_from_db()  # the refused change was made in memory only
                raise
        return Response(ChannelSerializer(channel).data)

    def destroy(self, request, *args, **kwargs):
        channel_delete(channel=self.get_object(), actor=request.user)
        return Response(status=204)

    @extend_schema(
        request=None, responses=ChannelTestSerializer, description="Send a test notice through it now."
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None, format=None):
        ok, text = channel_test(channel=self.get_object(), actor=request.user)
        return Response({"ok": ok, "result": text})


# --------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    flow = serializers.IntegerField(source="rule.flow_id", read_only=True)
    rule_sentence = serializers.SerializerMethodField()
    firing = serializers.BooleanField(source="is_firing", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    muted_until = serializers.DateTimeField(source="rule.muted_until", read_only=True, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "flow", "rule_sentence", "firing", "started_at", "resolved_at", "summary",
            "notifications", "last_notified_at", "acknowledged_at", "acknowledged_by", "muted_until",
        ]  # fmt: skip
        read_only_fields = fields

    def get_rule_sentence(self, alert: Alert) -> str:
        return f"{alert.rule.flow.name} {alert.rule.describe()}"


class MuteSerializer(serializers.Serializer):
    minutes = StrictIntegerField(
        min_value=min(MUTE_CHOICES), max_value=max(MUTE_CHOICES),
        help_text=f"How long: one of {', '.join(map(str, MUTE_CHOICES))} minutes.",
    )  # fmt: skip


class AlertFilterSerializer(serializers.Serializer):
    firing = StrictBooleanField(
        required=False, help_text="Only alerts firing now (true) or resolved (false)."
    )


class AlertViewSet(RolesByAction, viewsets.ReadOnlyModelViewSet):
    """What is wrong now, firing first: everyone with a role reads; operators acknowledge, mute and
    unmute (as on the Alerts page)."""

    serializer_class = AlertSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsOperator]

    def get_queryset(self):
        alerts = Alert.objects.select_related("rule__flow", "acknowledged_by").order_by("-started_at", "-id")
        if self.action == "list":
            refuse_repeated(self.request.query_params, ["firing"])
            raw = self.request.query_params.get("firing")
            if raw is not None:
                if raw not in ("true", "false"):
                    raise ValidationError({"firing": ["give true or false"]})
                alerts = alerts.filter(resolved_at__isnull=raw == "true")
        return alerts

    @extend_schema(parameters=[AlertFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _answer(self, alert: Alert) -> Response:
        return Response(AlertSerializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(
        request=None, responses={200: AlertSerializer, 409: OpenApiResponse(description="Why not.")}
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None, format=None):
        alert = self.get_object()
        with refusals(conflict=True):
            alert_acknowledge(alert=alert, actor=request.user)
        return self._answer(alert)

    @extend_schema(request=MuteSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def mute(self, request, pk=None, format=None):
        alert = self.get_object()
        body = MuteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with refusals():
            alert_mute(alert=alert, actor=request.user, minutes=body.validated_data["minutes"])
        return self._answer(alert)

    @extend_schema(
        request=None, responses={200: AlertSerializer, 409: OpenApiResponse(description="It is not muted.")}
    )
    @action(detail=True, methods=["post"])
    def unmute(self, request, pk=None, format=None):
        alert = self.get_object()
        with refusals(conflict=True):
            alert_unmute(alert=alert, actor=request.user)
        return self._answer(alert)
