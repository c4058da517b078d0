"""django-q2 task: a thin wrapper around the one evaluation service."""

from hub.alerts.evaluation import alerts_evaluate


def alerts_evaluate_task() -> str:
    return alerts_evaluate().summary()
