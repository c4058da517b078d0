from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator

from connectors.models import System
from hub.models import ApiToken
from hub.roles import ROLES

ROLE_CHOICES = [(name, description.split(":")[0]) for name, description in ROLES.items()]


def new_password_field(label: str, *, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class UserCreateForm(forms.Form):
    username = forms.CharField(
        label="Username",
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only. People sign in with it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        label="Email",
        required=False,
        max_length=254,
        help_text="Optional; for a machine account leave it empty.",
    )
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial="ops")
    password = new_password_field(
        "Initial password",
        help_text="At least 10 characters, not only digits, not a common password and not like the username. Tell the person to keep it private.",
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("There is already a user with this username.")
        return username

    def clean(self) -> dict:
        # Check the password in the same round as the other fields (the service checks it again).
        data = super().clean()
        if data.get("password"):
            candidate = get_user_model()(username=data.get("username", ""), email=data.get("email", ""))
            try:
                validate_password(data["password"], candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc.messages)
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES)


class PasswordResetForm(forms.Form):
    """A new password for `user`, checked by the password validators."""

    password = new_password_field(
        "New password",
        help_text="At least 10 characters, not only digits, not a common password and not like the username.",
    )
    password_again = new_password_field("New password again")

    def __init__(self, *args, user, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password"):
            try:
                validate_password(data["password"], self.user)
            except forms.ValidationError as exc:
                self.add_error("password", exc.messages)
        if data.get("password") and data.get("password_again") and data["password"] != data["password_again"]:
            self.add_error("password_again", "The two passwords are not the same.")
        return data


class TokenForm(forms.Form):
    """A new API token for a machine account: a name, the systems it may publish for, how long."""

    name = forms.CharField(
        label="Name", max_length=100, required=False, help_text="Where it is used, e.g. “shop server”."
    )
    systems = forms.ModelMultipleChoiceField(
        label="May publish for",
        queryset=System.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one system the token may publish for."},
    )
    days = forms.TypedChoiceField(
        label="Lasts",
        coerce=int,
        choices=[(days, f"{days} days") for days in ApiToken.DAYS_CHOICES],
        initial=ApiToken.DEFAULT_DAYS,
    )
