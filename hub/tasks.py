"""django-q2 tasks: thin wrappers, ids in, one service call."""

from hub.models import Flow
from hub.pipeline.drain import deliveries_drain as _drain
from hub.pipeline.polling import flow_poll
from hub.services.retention import retention_purge


def deliveries_drain() -> int:
    return _drain()


def flow_poll_task(flow_id: int) -> str:
    flow = Flow.objects.select_related("source_system", "source_model").filter(pk=flow_id).first()
    if flow is None:
        return "flow no longer exists"
    result = flow_poll(flow=flow)
    return result.summary()


def retention_purge_task() -> str:
    return retention_purge().summary()
