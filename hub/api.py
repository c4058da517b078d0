"""REST API under /api/v1/: publish events; read events, deliveries, flows, dead letters, audit."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from connectors.models import System
from dlq.models import DeadLetter
from dlq.services import DeadLetterError, dead_letter_discard, dead_letter_replay
from hub import serializers as s
from hub.models import AuditEntry, Delivery, Event, Flow
from hub.roles import CanPublish, IsAdminRole, IsOperator
from hub.services.config import flow_pause, flow_resume
from hub.services.ingest import IncomingEvent, IngestError, events_store, parse_json

EVENT_FIELDS = ("system", "type", "idempotency_key", "payload")


def _error(status_code: int, message: str, **extra) -> Response:
    return Response({"error": message, **extra}, status=status_code)


class EventViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Publish events (POST) and read them back."""

    serializer_class = s.EventSerializer

    def get_permissions(self):
        return [CanPublish()] if self.action == "create" else [IsAdminRole()]

    def get_queryset(self):
        qs = Event.objects.select_related("system").order_by("-received_at")
        if system := self.request.query_params.get("system"):
            qs = qs.filter(system__slug=system)
        if record := self.request.query_params.get("record_id"):
            qs = qs.filter(record_id=record)
        return qs

    @extend_schema(
        request=s.PublishEventSerializer,
        responses={
            202: s.PublishResultSerializer,
            400: OpenApiResponse(description="malformed or missing fields"),
            404: OpenApiResponse(description="unknown system"),
            413: OpenApiResponse(description="too large"),
        },
        description='Publish one event, or a batch: {"events": [event, ...]} with up to 1,000 events '
        '(answered with {"results": [...]}). Stored durably before the 202.',
    )
    def create(self, request, *args, **kwargs):
        try:
            body = request.body
        except RequestDataTooBig:
            return _error(413, f"body too large; the limit is {settings.HUB_MAX_BATCH_BYTES} bytes")
        if len(body) > settings.HUB_MAX_BATCH_BYTES:
            return _error(413, f"body too large; the limit is {settings.HUB_MAX_BATCH_BYTES} bytes")
        try:
            data = parse_json(body)
        except IngestError as exc:
            return _error(exc.status, exc.message)
        if not isinstance(data, dict):
            return _error(400, 'expected a JSON object: one event, or {"events": [...]}')
        batch = "events" in data
        raw_events = data["events"] if batch else [data]
        if batch and not isinstance(raw_events, list):
            return _error(400, "events must be a list")
        if batch and not raw_events:
            return _error(400, "events is empty: send at least one event")
        if len(raw_events) > settings.HUB_MAX_BATCH_EVENTS:
            return _error(
                413, f"{len(raw_events)} events in one request; the limit is {settings.HUB_MAX_BATCH_EVENTS}"
            )
        systems = {
            sys.slug: sys
            for sys in System.objects.filter(
                slug__in={str(e.get("system")) for e in raw_events if isinstance(e, dict)}
            )
        }
        items, errors = [], {}
        for index, raw in enumerate(raw_events):
            where = f"events[{index}]" if batch else "event"
            problem = _event_problem(raw, systems)
            if problem:
                if not batch and problem.startswith("unknown system"):
                    return _error(404, problem)
                errors[where] = problem
                continue
            items.append(
                IncomingEvent(
                    systems[raw["system"]],
                    str(raw["type"]),
                    str(raw["idempotency_key"]),
                    raw["payload"],
                    origin=Event.Origin.API,
                )
            )
        if errors:
            return _error(400, "; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
        results = events_store(items)
        if batch:
            return Response(
                {
                    "results": [r.as_dict() for r in results],
                    "accepted": sum(1 for r in results if not r.duplicate),
                    "duplicates": sum(1 for r in results if r.duplicate),
                },
                status=202,
            )
        return Response(results[0].as_dict(), status=202)


def _event_problem(raw, systems: dict[str, System]) -> str:
    if not isinstance(raw, dict):
        return "each event must be a JSON object"
    missing = [name for name in EVENT_FIELDS if raw.get(name) in (None, "")]
    if missing:
        return "missing " + ", ".join(missing)
    if not isinstance(raw["payload"], dict):
        return "payload must be a JSON object"
    for name in ("system", "type", "idempotency_key"):
        if not isinstance(raw[name], str | int) or isinstance(raw[name], bool):
            return f"{name} must be a string"
    if len(str(raw["idempotency_key"])) > 300:
        return "idempotency_key is longer than 300 characters"
    if len(str(raw["type"])) > 200:
        return "type is longer than 200 characters"
    if raw["system"] not in systems:
        return f"unknown system {raw['system']!r}"
    return ""


class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsAdminRole]

    def get_serializer_class(self):
        return s.DeliveryDetailSerializer if self.action == "retrieve" else s.DeliverySerializer

    def get_queryset(self):
        qs = Delivery.objects.select_related("flow").order_by("-id")
        params = self.request.query_params
        if flow := params.get("flow"):
            qs = qs.filter(flow_id=flow) if flow.isdigit() else qs.none()
        if state := params.get("status"):
            qs = qs.filter(status=state)
        if event := params.get("event"):
            qs = qs.filter(event_id=event)
        if self.action == "retrieve":
            qs = qs.prefetch_related("attempt_log")
        return qs


class FlowViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.FlowSerializer
    permission_classes = [IsOperator]
    queryset = Flow.objects.select_related(
        "source_system", "target_system", "source_model__system", "target_model__system"
    ).order_by("name")

    @extend_schema(request=None, responses=s.FlowSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        flow = flow_pause(flow=self.get_object(), actor=request.user, reason=request.data.get("reason", ""))
        return Response(s.FlowSerializer(flow).data)

    @extend_schema(request=None, responses=s.FlowSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        flow = flow_resume(flow=self.get_object(), actor=request.user)
        return Response(s.FlowSerializer(flow).data)


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.DeadLetterSerializer
    permission_classes = [IsOperator]

    def get_queryset(self):
        qs = DeadLetter.objects.select_related("flow", "delivery").order_by("-created_at")
        if self.request.query_params.get("open", "").lower() in ("1", "true", "yes"):
            qs = qs.unresolved()
        return qs

    @extend_schema(request=s.ReplaySerializer, responses=s.DeliverySerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        form = s.ReplaySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            delivery = dead_letter_replay(
                letter=self.get_object(),
                actor=request.user,
                corrected_record=form.validated_data.get("corrected_record"),
                note=form.validated_data.get("note", ""),
            )
        except DeadLetterError as exc:
            return _error(409, str(exc))
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.DiscardSerializer, responses=s.DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None):
        form = s.DiscardSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            letter = dead_letter_discard(
                letter=self.get_object(), actor=request.user, reason=form.validated_data["reason"]
            )
        except DeadLetterError as exc:
            return _error(409, str(exc))
        return Response(s.DeadLetterSerializer(letter).data)


class AuditViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.AuditEntrySerializer
    permission_classes = [IsAdminRole]
    queryset = AuditEntry.objects.order_by("-at", "-id")
