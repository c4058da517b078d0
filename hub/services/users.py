"""People and machine accounts: create, change role, (de)activate, reset password, API tokens.

Each change writes its audit entry in the same transaction. Passwords and token keys never reach
an audit diff; of a token only its SHA-256 is stored."""

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from connectors.models import System
from hub.models import ApiToken
from hub.pipeline import clock
from hub.roles import ADMIN, PUBLISHER, ROLES, grant_role, roles_of
from hub.services.audit import audit_record

User = get_user_model()


class UserError(Exception):
    """A change to a user that is not allowed, with the reason in plain words."""


def user_role(user) -> str:
    """The user's one hub role ("" when none); superusers are admins."""
    roles = roles_of(user)
    for name in ROLES:
        if name in roles:
            return name
    return ""


def _set_role(user, role: str) -> None:
    if role not in ROLES:
        raise ValidationError({"role": "Choose one of the roles."})
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    grant_role(user, role)


def user_create(*, username: str, email: str, role: str, password: str, actor):
    username = username.strip()
    user = User(username=username, email=email.strip())
    user.full_clean(exclude=["password"])
    if role not in ROLES:
        raise ValidationError({"role": "Choose one of the roles."})
    _password_check(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        _set_role(user, role)
        audit_record(
            actor=actor,
            verb="create",
            target=user,
            diff={"username": user.username, "email": user.email, "role": role},
        )
    return user


def user_role_set(*, user, role: str, actor):
    old = user_role(user)
    if user.pk == getattr(actor, "pk", None) and role != ADMIN:
        raise UserError("You can't take away your own admin role. Ask another admin to do it.")
    if user.is_superuser and role != ADMIN:
        raise UserError("This account is a superuser and stays an admin; change it in the Django admin.")
    if role == old:
        return user
    with transaction.atomic():
        _set_role(user, role)
        if role != PUBLISHER:
            # Tokens are for machine accounts; a person who stops being one loses them.
            ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=clock.now())
        audit_record(actor=actor, verb="change_role", target=user, diff={"role": [old, role]})
    return user


def user_active_set(*, user, active: bool, actor):
    if user.pk == getattr(actor, "pk", None) and not active:
        raise UserError("You can't deactivate yourself.")
    if user.is_active == active:
        return user
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            verb="reactivate" if active else "deactivate",
            target=user,
            diff={"is_active": [not active, active]},
        )
    return user


def _password_check(password: str, user) -> None:
    """The password validators' verdict, as a form error on the password field."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


def user_password_reset(*, user, password: str, actor):
    _password_check(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(actor=actor, verb="reset_password", target=user, diff={"password": "changed"})
    return user


# "hub_" marks the hub's keys for secret scanners; the prefix shown on pages is "hub_" and the
# first 8 random characters (about 48 of the key's 256 random bits, the rest stay secret).
KEY_MARK = "hub_"
PREFIX_LENGTH = 12


def new_key() -> str:
    return KEY_MARK + secrets.token_urlsafe(32)


def api_token_create(
    *, user, systems: Iterable[System], actor, name: str = "", days: int = ApiToken.DEFAULT_DAYS
) -> tuple[ApiToken, str]:
    """Make a token for a machine account, bound to `systems`; returns it with its key, which is
    never stored and cannot be shown again."""
    if PUBLISHER not in roles_of(user):
        raise UserError("API tokens are for machine accounts with the publisher role.")
    if not user.is_active:
        raise UserError("This account is deactivated; reactivate it first.")
    systems = list(systems)
    if not systems:
        raise UserError("Choose at least one system the token may publish for.")
    if days not in ApiToken.DAYS_CHOICES:
        raise UserError(
            f"Choose how long the token lasts: {', '.join(map(str, ApiToken.DAYS_CHOICES))} days."
        )
    key = new_key()
    now = clock.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip()[:100],
            prefix=key[:PREFIX_LENGTH],
            key_hash=ApiToken.hash_of(key),
            created_at=now,
            created_by=actor if getattr(actor, "pk", None) else None,
            expires_at=now + timedelta(days=days),
        )
        token.systems.set(systems)
        audit_record(
            actor=actor,
            verb="create_token",
            target=user,
            diff={
                "token": token.prefix + "…",
                "name": token.name,
                "systems": sorted(s.slug for s in systems),
                "expires_at": token.expires_at.isoformat(),
            },
        )
    return token, key


def user_token_create(*, user, actor, systems: Iterable[System] | None = None) -> str:
    """A token with the defaults, returning only its key. `systems` None: every system there is
    now (tests and tools; the Users page always asks which)."""
    chosen = System.objects.all() if systems is None else systems
    return api_token_create(user=user, systems=chosen, actor=actor)[1]


def api_token_revoke(*, token: ApiToken, actor) -> bool:
    """Revoke a token at once; False when it already was."""
    now = clock.now()
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            token.revoked_at = now
            audit_record(
                actor=actor, verb="revoke_token", target=token.user, diff={"token": token.prefix + "…"}
            )
    return bool(changed)
