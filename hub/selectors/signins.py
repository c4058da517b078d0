"""Paused sign-ins: the accounts and addresses that django-axes refuses now, for the Users page."""

from dataclasses import dataclass
from datetime import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q, Sum

from hub.pipeline import clock


@dataclass(frozen=True)
class SignInPause:
    kind: str  # "account" or "address"
    value: str
    failures: int
    until: datetime


def sign_in_pauses(now: datetime | None = None) -> list[SignInPause]:
    """Accounts and addresses with at least the failure limit of wrong passwords within the
    cool-off time, as axes counts them (the sum over its attempt rows), soonest to end first."""
    now = now or clock.now()
    recent = AccessAttempt.objects.filter(attempt_time__gte=now - settings.AXES_COOLOFF_TIME)
    pauses = []
    # An IP address field turns "" into NULL, so only the username also needs "" left out.
    for kind, column, blank in (("account", "username", Q(username="")), ("address", "ip_address", Q())):
        rows = (
            recent.exclude(**{f"{column}__isnull": True})
            .exclude(blank)
            .values(column)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
            .order_by(column)
        )
        pauses += [
            SignInPause(kind, row[column], row["failures"], row["last"] + settings.AXES_COOLOFF_TIME)
            for row in rows
        ]
    return pauses
