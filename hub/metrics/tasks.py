"""django-q2 task of the metrics app: thin, one call."""

from hub.metrics.rollup import metrics_maintain as _maintain


def metrics_maintain() -> dict[str, int]:
    return _maintain()
