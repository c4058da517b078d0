"""Access checks for pages and HTMX endpoints: every view names the roles it allows."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

from hub.roles import ADMIN, OPERATORS, READERS, RoleRefused, has_role, roles_of


def role_required(*roles: str, write_roles: tuple[str, ...] | None = None) -> Callable:
    """Allow `roles` to view; when `write_roles` is given, only they may POST/PUT/PATCH/DELETE.

    An auditor posting to a change endpoint gets 403, whatever the page.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    # A refreshing region must not swap the login page into itself: send the
                    # whole browser to sign in instead.
                    response = HttpResponse(status=401)
                    response["HX-Redirect"] = (
                        f"{resolve_url(settings.LOGIN_URL)}?next={request.get_full_path()}"
                    )
                    return response
                return redirect_to_login(request.get_full_path())
            allowed, what = roles, "This page"
            if write_roles is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
                allowed, what = write_roles, "This change"
            if not has_role(request.user, allowed):
                raise RoleRefused(request.user, allowed, what=what)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


readers = role_required(*READERS)
readers_admin_writes = role_required(*READERS, write_roles=(ADMIN,))
readers_ops_writes = role_required(*READERS, write_roles=OPERATORS)
admins_only = role_required(ADMIN)
operators_only = role_required(*OPERATORS)


def roles_context(request: HttpRequest) -> dict:
    roles = roles_of(getattr(request, "user", None))
    return {
        "user_roles": roles,
        "can_configure": ADMIN in roles,
        "can_operate": bool(roles & set(OPERATORS)),
    }
