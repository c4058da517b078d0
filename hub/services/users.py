"""People and machine accounts: create, change role, (de)activate, reset password, API tokens.

Each change writes its audit entry in the same transaction. Passwords and token keys never reach
an audit diff."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

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
            # Tokens are for machine accounts; a person who stops being one loses the token.
            Token.objects.filter(user=user).delete()
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


def user_token_create(*, user, actor) -> str:
    """Create the machine account's API token and return its key: the only time anyone sees it."""
    if PUBLISHER not in roles_of(user):
        raise UserError("API tokens are for machine accounts with the publisher role.")
    if not user.is_active:
        raise UserError("This account is deactivated; reactivate it first.")
    with transaction.atomic():
        if Token.objects.filter(user=user).exists():
            raise UserError("This account already has a token. Revoke it first to make a new one.")
        token = Token.objects.create(user=user)
        audit_record(actor=actor, verb="create_token", target=user, diff={"token": "created"})
    return token.key


def user_token_revoke(*, user, actor) -> bool:
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user=user).delete()
        if deleted:
            audit_record(actor=actor, verb="revoke_token", target=user, diff={"token": "revoked"})
    return bool(deleted)
