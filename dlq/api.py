"""The dead-letter API: list (with the inbox's filters), inspect, replay, discard, "it arrived",
"send again", and bulk jobs over everything matching a filter."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from common import strictjson
from dlq.forms import InboxFilterForm
from dlq.jobs import bulk_job_cancel, bulk_job_start
from dlq.models import BulkJob, DeadLetter
from dlq.services import (
    DeadLetterError,
    dead_letter_arrived,
    dead_letter_discard,
    dead_letter_replay,
    dead_letter_send_again,
    replay_summary,
)
from hub.api.deliveries import DeliverySerializer
from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import TextField, refuse_repeated
from hub.roles import IsOperator

FILTER_PARAMETERS = [
    OpenApiParameter("open", bool, description="Only letters not yet resolved."),
    OpenApiParameter("flow", int),
    OpenApiParameter("system", int, description="Letters of every flow from or to this system."),
    OpenApiParameter("error_class", str),
    OpenApiParameter("pattern", str, description="The cause pattern (the reason without ids and numbers)."),
    OpenApiParameter("since", str, description="Dead-lettered at or after (ISO 8601)."),
    OpenApiParameter("until", str, description="Dead-lettered before (ISO 8601)."),
    OpenApiParameter("record", str, description="The source record id."),
    OpenApiParameter("text", str, description="Text in the reason or the record id."),
]


OPEN_VALUES = {"true": True, "1": True, "false": False, "0": False}


def letter_filters(data) -> tuple[InboxFilterForm, dict]:
    """The inbox's filter form over API parameters; a bad one is a 400 naming the field."""
    refuse_repeated(data, [parameter.name for parameter in FILTER_PARAMETERS])
    # The inbox page's empty select means "all"; the API's ids are integers, so leave them out instead.
    if blank := [name for name in ("flow", "system") if data.get(name) == ""]:
        raise ValidationError({name: ["give an id, or leave the parameter out"] for name in blank})
    form = InboxFilterForm(data)
    if not form.is_valid():
        raise ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
    return form, form.filters()


class DeadLetterSerializer(serializers.ModelSerializer):
    flow = serializers.StringRelatedField()
    event_id = serializers.UUIDField(source="delivery.event_id", read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id", "delivery", "event_id", "flow", "error_class", "reason", "pattern", "record_key",
            "last_response", "attempts", "created_at", "resolved_at", "resolution", "resolution_note",
        ]  # fmt: skip


class ReplayedSerializer(DeliverySerializer):
    """The delivery a replay (or send-again) queued, with what happens to it now."""

    message = serializers.SerializerMethodField()

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "message"]

    def get_message(self, delivery) -> str:
        return replay_summary(delivery)


CONFLICT = OpenApiResponse(description="the letter is not in a state that allows this: why")


class ReplaySerializer(serializers.Serializer):
    corrected_record = serializers.JSONField(
        required=False, help_text="A fixed source record to send instead."
    )
    note = TextField(required=False, allow_blank=True, default="")

    def validate_corrected_record(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object: the corrected source record")
        try:
            return strictjson.check_value(value)
        except strictjson.JSONInputError as exc:
            raise serializers.ValidationError(exc.message) from None


class NoteSerializer(serializers.Serializer):
    note = TextField(required=False, allow_blank=True, default="", max_length=500)


class ArrivedSerializer(NoteSerializer):
    target_id = TextField(
        required=False, allow_blank=True, default="", max_length=300,
        help_text="The record's id in the target system; links it so later changes update it.",
    )  # fmt: skip


class DiscardSerializer(serializers.Serializer):
    reason = TextField(help_text="Why this dead letter needs no delivery; kept in the audit log.")


class BulkJobSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()

    class Meta:
        model = BulkJob
        fields = [
            "id", "action", "state", "description", "filters", "reason", "total", "done", "held",
            "skipped", "failed", "cancel_requested", "error", "created_by", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip


class BulkStartSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=BulkJob.Action.choices)
    reason = TextField(required=False, allow_blank=True, default="", max_length=1000)


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeadLetterSerializer
    parser_classes = [StrictJSONParser]  # JSON in and out, as the schema says
    permission_classes = [IsOperator]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        qs = DeadLetter.objects.select_related("flow", "delivery").order_by("-created_at", "-id")
        if self.action != "list":
            return qs
        params = self.request.query_params
        qs = qs.matching(**letter_filters(params)[1])
        if "open" in params and params["open"].lower() not in OPEN_VALUES:
            raise ValidationError({"open": ["must be true or false"]})
        if OPEN_VALUES.get(params.get("open", "").lower()):
            qs = qs.unresolved()
        return qs

    @extend_schema(parameters=FILTER_PARAMETERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _act(self, request, serializer_class, act):
        form = serializer_class(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            return act(self.get_object(), form.validated_data)
        except DeadLetterError as exc:
            return error_response(409, str(exc))

    def _delivery(self, delivery):
        """The replayed delivery, with what happens to it now (sent, or held by a paused flow)."""
        return Response(ReplayedSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReplaySerializer, responses={202: ReplayedSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        def act(letter, data):
            return self._delivery(
                dead_letter_replay(
                    letter=letter,
                    actor=request.user,
                    corrected_record=data.get("corrected_record"),
                    note=data.get("note", ""),
                )  # fmt: skip
            )

        return self._act(request, ReplaySerializer, act)

    @extend_schema(request=ArrivedSerializer, responses={200: DeliverySerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def arrived(self, request, pk=None):
        """An outcome-unknown letter: the record did reach the target (nothing is sent)."""

        def act(letter, data):
            delivery = dead_letter_arrived(
                letter=letter, actor=request.user, target_id=data["target_id"], note=data["note"]
            )
            return Response(DeliverySerializer(delivery).data)

        return self._act(request, ArrivedSerializer, act)

    @extend_schema(request=NoteSerializer, responses={202: ReplayedSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="send-again")
    def send_again(self, request, pk=None):
        """An outcome-unknown letter: the record did not reach the target; create it anew."""

        def act(letter, data):
            return self._delivery(
                dead_letter_send_again(letter=letter, actor=request.user, note=data["note"])
            )

        return self._act(request, NoteSerializer, act)

    @extend_schema(request=DiscardSerializer, responses={200: DeadLetterSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        def act(letter, data):
            letter = dead_letter_discard(letter=letter, actor=request.user, reason=data["reason"])
            return Response(DeadLetterSerializer(letter).data)

        return self._act(request, DiscardSerializer, act)


class BulkJobViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Replay or discard every open letter matching the filters, in the background."""

    serializer_class = BulkJobSerializer
    parser_classes = [StrictJSONParser]  # JSON in and out, as the schema says
    permission_classes = [IsOperator]
    queryset = BulkJob.objects.select_related("created_by").order_by("-created_at", "-id")
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=BulkStartSerializer, parameters=FILTER_PARAMETERS[1:], responses={202: BulkJobSerializer}
    )
    def create(self, request):
        """Start a job: the filters come as query parameters, the action (and a discard's reason) as JSON."""
        body = BulkStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form, filters = letter_filters(request.query_params)
        try:
            job = bulk_job_start(
                action=body.validated_data["action"], filters=filters, description=form.describe(),
                reason=body.validated_data["reason"].strip(), actor=request.user,
            )  # fmt: skip
        except DeadLetterError as exc:
            return error_response(400, str(exc))
        return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={200: BulkJobSerializer, 409: OpenApiResponse(description="the job has finished already")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            job = bulk_job_cancel(job=self.get_object(), actor=request.user)
        except DeadLetterError as exc:
            return error_response(409, str(exc))
        return Response(BulkJobSerializer(job).data)


router = SimpleRouter()
router.register("dead-letters/jobs", BulkJobViewSet, basename="api-dead-letter-jobs")
router.register("dead-letters", DeadLetterViewSet, basename="api-dead-letters")
