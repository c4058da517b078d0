"""Sign-in throttling (django-axes): an admin lifts the pause on an account or an address, audited."""

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.db import transaction

from hub.services.audit import audit_append, audit_record


def sign_in_pause_lift(*, actor, username: str = "", address: str = "") -> int:
    """Forget the wrong passwords counted for `username` or for `address` (one of them), so sign-in
    is allowed again at once; returns how many attempt rows were forgotten."""
    if bool(username) == bool(address):
        raise ValueError("lift the pause of one account or one address")
    with transaction.atomic():
        if username:
            forgotten = axes_reset(username=username)
            diff = {"username": username, "attempts_forgotten": forgotten}
            user = get_user_model().objects.filter(username=username).first()
            if user is not None:
                audit_record(actor=actor, verb="lift_sign_in_pause", target=user, diff=diff)
            else:
                audit_append(
                    actor=actor, verb="lift_sign_in_pause", target_type="user", label=username, diff=diff
                )
        else:
            forgotten = axes_reset(ip=address)
            audit_append(
                actor=actor,
                verb="lift_sign_in_pause",
                target_type="address",
                target_id=address,
                label=address,
                diff={"address": address, "attempts_forgotten": forgotten},
            )
    return forgotten
