"""Roles are Django groups: admin configures, ops operates, auditor reads, publisher (machines)
only publishes events. Superusers count as admins."""

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

ADMIN, OPS, AUDITOR, PUBLISHER = "admin", "ops", "auditor", "publisher"
ROLES = {
    ADMIN: "Admin: configures systems, models, mappings and flows",
    OPS: "Ops: watches health, pauses flows, works the dead-letter inbox",
    AUDITOR: "Auditor: reads everything, changes nothing",
    PUBLISHER: "Publisher: a machine account that may only publish events",
}
READERS = (ADMIN, OPS, AUDITOR)
OPERATORS = (ADMIN, OPS)
# How a refusal names a role, and the person who has it.
ROLE_LABELS = {ADMIN: "Admin", OPS: "Ops", AUDITOR: "Auditor", PUBLISHER: "Publisher"}
ROLE_HOLDERS = {ADMIN: "an Admin", OPS: "an Ops user", AUDITOR: "an Auditor", PUBLISHER: "a Publisher"}


def ensure_role_groups(*, using: str = "default") -> int:
    """Create the role groups that are missing; returns how many were."""
    existing = set(Group.objects.using(using).filter(name__in=ROLES).values_list("name", flat=True))
    missing = [Group(name=name) for name in ROLES if name not in existing]
    Group.objects.using(using).bulk_create(missing)
    return len(missing)


def roles_of(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_hub_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(ADMIN)
        user._hub_roles = cached
    return cached


def has_role(user, roles: Iterable[str]) -> bool:
    return bool(roles_of(user) & set(roles))


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def role_needed_message(user, allowed: Iterable[str], *, what: str = "This page") -> str:
    """A refusal in plain words: "This page needs the Admin role. You are signed in as an Auditor." """
    needed = [ROLE_LABELS[role] for role in ROLES if role in set(allowed)]
    held = [ROLE_HOLDERS[role] for role in ROLES if role in roles_of(user)]
    who = f"You are signed in as {_either(held)}." if held else "Your account has no role yet; ask an admin."
    return f"{what} needs the {_either(needed)} role. {who}"


class RoleRefused(PermissionDenied):
    """A page refused for want of a role: says so in plain words and keeps which roles would have
    been let in and which the user has, so the 403 page can point at them."""

    def __init__(self, user, allowed: Iterable[str], *, what: str = "This page") -> None:
        self.needed = [role for role in ROLES if role in set(allowed)]
        self.held = [role for role in ROLES if role in roles_of(user)]
        super().__init__(role_needed_message(user, allowed, what=what))


def grant_role(user, role: str) -> None:
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    user.__dict__.pop("_hub_roles", None)


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    read_roles: tuple[str, ...] = READERS

    def has_permission(self, request, view) -> bool:
        allowed = self.read_roles if request.method in SAFE_METHODS else self.roles
        if has_role(request.user, allowed):
            return True
        # DRF answers 403 with this message (a fresh instance per request, so setting it is safe).
        what = "Reading this" if request.method in SAFE_METHODS else "This change"
        self.message = role_needed_message(request.user, allowed, what=what)
        return False


class IsAdminRole(_RolePermission):
    """Everyone with a role may read; only admins change."""

    roles = (ADMIN,)


class IsOperator(_RolePermission):
    roles = OPERATORS


class CanPublish(_RolePermission):
    roles = (ADMIN, PUBLISHER)


class IsReader(_RolePermission):
    """Everyone with a role, whatever the method: for a POST that changes nothing (the mapper's
    preview runs rules on a record)."""

    roles = READERS


class IsAdminOnly(_RolePermission):
    """Admins only, reading too: people, their roles and the API tokens (the Users page)."""

    roles = (ADMIN,)
    read_roles = (ADMIN,)
