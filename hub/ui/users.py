"""Users and roles, for admins: list, create, change role, (de)activate, reset password, API tokens,
lifting a paused sign-in."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connectors.models import System
from hub.access import admins_only
from hub.models import ApiToken
from hub.pipeline import clock
from hub.roles import ADMIN, ROLES
from hub.selectors.signins import sign_in_pauses
from hub.services.signins import sign_in_pause_lift
from hub.services.users import (
    UserError,
    api_token_create,
    api_token_revoke,
    user_active_set,
    user_create,
    user_password_reset,
    user_role_set,
)
from hub.ui.forms.users import ROLE_CHOICES, PasswordResetForm, RoleForm, TokenForm, UserCreateForm

User = get_user_model()


def _role_from_groups(user) -> str:
    """The user's role from prefetched groups (roles_of() would query once per user)."""
    names = {group.name for group in user.groups.all()}
    if user.is_superuser:
        names.add(ADMIN)
    return next((role for role in ROLES if role in names), "")


# Tokens that ended (revoked or expired) stay listed this long, then only the audit log has them.
RECENT_TOKEN_DAYS = timedelta(days=30)


def _region_context(
    request,
    *,
    errors: dict[int, str] | None = None,
    new_token: tuple[int, str] | None = None,
    token_form: tuple[int, TokenForm] | None = None,
) -> dict:
    now = clock.now()
    # Live tokens, and those that ended in the last 30 days (so "why was my program refused?"
    # has an answer on the page); older ones stay in the audit log.
    recent = ApiToken.objects.exclude(revoked_at__lt=now - RECENT_TOKEN_DAYS).exclude(
        expires_at__lt=now - RECENT_TOKEN_DAYS
    )
    users = list(
        User.objects.prefetch_related(
            "groups",
            Prefetch("api_tokens", queryset=recent.prefetch_related("systems"), to_attr="shown_tokens"),
        ).order_by("-is_active", "username")
    )
    labels = dict(ROLE_CHOICES)
    pauses = sign_in_pauses(now)
    paused = {p.value: p for p in pauses if p.kind == "account"}
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
                "tokens": [_token_row(token, now) for token in user.shown_tokens],
                "token_form": token_form[1] if token_form and token_form[0] == user.pk else TokenForm(),
                "pause": paused.get(user.username),
            }
        )
    machines = [row for row in rows if row["role"] == "publisher"]
    return {
        "rows": rows,
        "machines": machines,
        "role_choices": ROLE_CHOICES,
        "pauses": pauses,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        # Read once for every machine account's token form (the form's field would query per form).
        "token_systems": list(System.objects.order_by("name")) if machines else [],
    }


def _token_row(token: ApiToken, now) -> dict:
    if token.revoked_at:
        state, label = "paused", "Revoked"
    elif token.expires_at <= now:
        state, label = "bad", "Expired"
    elif token.expires_at - now < timedelta(days=7):
        state, label = "warn", "Expires soon"
    else:
        state, label = "ok", "Active"
    return {"token": token, "state": state, "label": label, "live": state in ("ok", "warn")}


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
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _region(request, token_form=(user.pk, form))
    try:
        _, key = api_token_create(
            user=user,
            name=form.cleaned_data["name"],
            systems=form.cleaned_data["systems"],
            days=form.cleaned_data["days"],
            actor=request.user,
        )
    except UserError as exc:
        return _region(request, errors={user.pk: str(exc)})
    response = _region(request, new_token=(user.pk, key))
    response["Cache-Control"] = "no-store"  # the key is shown once; no cache keeps a copy
    return response


@require_POST
@admins_only
def user_token_revoke_view(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
    api_token_revoke(token=token, actor=request.user)
    if not request.htmx:
        messages.success(request, f"Revoked the API token {token.prefix}… of {token.user.username}.")
    return _region(request)


@require_POST
@admins_only
def sign_in_pause_lift_view(request):
    """Lift the sign-in pause of an account (`username`) or of an address (`address`)."""
    username, address = request.POST.get("username", ""), request.POST.get("address", "")
    if bool(username) != bool(address):
        sign_in_pause_lift(actor=request.user, username=username, address=address)
        if not request.htmx:
            messages.success(request, f"Sign-in is allowed again for {username or address}.")
    return _region(request)
