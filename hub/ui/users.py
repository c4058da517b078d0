"""Users and roles, for admins: list, create, change role, (de)activate, reset password, API tokens."""

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from hub.access import admins_only
from hub.roles import ADMIN, ROLES
from hub.services.users import (
    UserError,
    user_active_set,
    user_create,
    user_password_reset,
    user_role_set,
    user_token_create,
    user_token_revoke,
)
from hub.ui.forms.users import ROLE_CHOICES, PasswordResetForm, RoleForm, UserCreateForm

User = get_user_model()


def _role_from_groups(user) -> str:
    """The user's role from prefetched groups (roles_of() would query once per user)."""
    names = {group.name for group in user.groups.all()}
    if user.is_superuser:
        names.add(ADMIN)
    return next((role for role in ROLES if role in names), "")


def _region_context(
    request, *, errors: dict[int, str] | None = None, new_token: tuple[int, str] | None = None
) -> dict:
    users = list(
        User.objects.prefetch_related("groups")
        .annotate(token_created=Subquery(Token.objects.filter(user=OuterRef("pk")).values("created")[:1]))
        .order_by("-is_active", "username")
    )
    labels = dict(ROLE_CHOICES)
    rows = []
    for user in users:
        role = _role_from_groups(user)
        rows.append(
            {
                "user": user,
                "role": role,
                "role_label": labels.get(role, "No role"),
                "is_self": user.pk == request.user.pk,
                "error": (errors or {}).get(user.pk, ""),
                "new_token": new_token[1] if new_token and new_token[0] == user.pk else "",
            }
        )
    return {
        "rows": rows,
        "machines": [row for row in rows if row["role"] == "publisher"],
        "role_choices": ROLE_CHOICES,
    }


def _region(request, **kwargs):
    """After a change: the refreshed users region for HTMX, or the list page for a plain form post."""
    if request.htmx:
        return render(request, "hub/users.html#users-region", _region_context(request, **kwargs))
    for message in (kwargs.get("errors") or {}).values():
        messages.error(request, message)
    if kwargs.get("new_token"):
        # Without HTMX there is no partial to show it in: render the full page once, with the key.
        return render(request, "hub/users.html", _region_context(request, **kwargs))
    return redirect("hub-users")


@admins_only
def user_list(request):
    return render(request, "hub/users.html", _region_context(request))


@admins_only
def user_add(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(
                request, f"Created {user.username} ({dict(ROLE_CHOICES)[form.cleaned_data['role']]})."
            )
            return redirect("hub-users")
    return render(request, "hub/users_form.html", {"form": form})


@require_POST
@admins_only
def user_role(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    form = RoleForm(request.POST)
    errors = {}
    if not form.is_valid():
        errors[user.pk] = "Choose one of the roles."
    else:
        try:
            user_role_set(user=user, role=form.cleaned_data["role"], actor=request.user)
        except UserError as exc:
            errors[user.pk] = str(exc)
        else:
            if not request.htmx:
                messages.success(
                    request, f"{user.username} is now {dict(ROLE_CHOICES)[form.cleaned_data['role']]}."
                )
    return _region(request, errors=errors)


@require_POST
@admins_only
def user_active(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    errors = {}
    try:
        user_active_set(user=user, active=request.POST.get("active") == "1", actor=request.user)
    except UserError as exc:
        errors[user.pk] = str(exc)
    return _region(request, errors=errors)


@admins_only
def user_password(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    form = PasswordResetForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            user_password_reset(user=user, password=form.cleaned_data["password"], actor=request.user)
        except ValidationError as exc:
            form.add_error("password", exc.message_dict.get("password", exc.messages))
        else:
            if user.pk == request.user.pk:
                update_session_auth_hash(request, user)  # stay signed in after changing your own password
            messages.success(request, f"Set a new password for {user.username}. Tell them in a safe way.")
            return redirect("hub-users")
    return render(request, "hub/users_password.html", {"form": form, "subject": user})


@require_POST
@admins_only
def user_token(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    try:
        key = user_token_create(user=user, actor=request.user)
    except UserError as exc:
        return _region(request, errors={user.pk: str(exc)})
    response = _region(request, new_token=(user.pk, key))
    response["Cache-Control"] = "no-store"  # the key is shown once; no cache keeps a copy
    return response


@require_POST
@admins_only
def user_token_revoke_view(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    user_token_revoke(user=user, actor=request.user)
    if not request.htmx:
        messages.success(request, f"Revoked the API token of {user.username}.")
    return _region(request)
