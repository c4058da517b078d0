"""People and machine accounts, and their API tokens: admins only, reading too (the Users page).

Create a user with a role, change the role, deactivate or reactivate, set a new password; make a
publisher's API token (its key is in the create answer once, and nowhere ever again: only its
SHA-256 is stored), list tokens without their keys, revoke one. The same checks and services as
the Users page (hub/ui/forms/users.py, hub/services/users.py), so the same audit entries."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from connectors.models import System
from hub.api.errors import StrictJSONParser, error_response
from hub.api.fields import StrictBooleanField, StrictIntegerField, TextField, read_query
from hub.api.writes import refusals
from hub.models import ApiToken
from hub.pipeline import clock
from hub.roles import ROLES, IsAdminOnly
from hub.services.users import (
    api_token_create,
    api_token_revoke,
    user_active_set,
    user_password_reset,
    user_role,
    user_role_set,
)
from hub.services.users import user_create as user_create_service
from hub.ui.forms.users import UserCreateForm

User = get_user_model()
PASSWORD_HELP = "Write-only: never answered. At least 10 characters, not common, not like the username."


class RoleField(serializers.ChoiceField):
    """The user's one hub role (a superuser is an admin)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(ROLES.items()), allow_blank=True, **kwargs)  # "": no role yet

    def get_attribute(self, user) -> str:
        return user_role(user)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = TextField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    email = TextField(max_length=254, allow_blank=True, default="")
    role = RoleField()
    password = TextField(max_length=128, write_only=True, trim_whitespace=False, help_text=PASSWORD_HELP)
    is_active = serializers.BooleanField(read_only=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)
    date_joined = serializers.DateTimeField(read_only=True)


class UserChangeSerializer(serializers.Serializer):
    role = RoleField(required=False)
    is_active = StrictBooleanField(
        required=False, help_text="false deactivates: the account can no longer sign in."
    )
    password = TextField(
        max_length=128, write_only=True, required=False, trim_whitespace=False, help_text=PASSWORD_HELP
    )


class UserViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = UserSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminOnly]
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = User.objects.prefetch_related("groups").order_by("username")

    @extend_schema(responses={201: UserSerializer})
    def create(self, request, *args, **kwargs):
        body = UserSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = UserCreateForm(body.validated_data)  # the page's checks: a username taken, a weak password
        if not form.is_valid():
            raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
        with refusals():
            user = user_create_service(actor=request.user, **form.cleaned_data)
        return Response(UserSerializer(user).data, status=201)

    @extend_schema(
        request=UserChangeSerializer,
        responses={
            200: UserSerializer,
            400: OpenApiResponse(description="e.g. taking away your own admin role"),
        },
        description="Change the role, deactivate or reactivate, or set a new password; all or nothing.",
    )
    def partial_update(self, request, *args, **kwargs):
        user = self.get_object()
        body = UserChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with refusals(), transaction.atomic():
            if "role" in data:
                user_role_set(user=user, role=data["role"], actor=request.user)
            if "is_active" in data:
                user_active_set(user=user, active=data["is_active"], actor=request.user)
            if "password" in data:
                user_password_reset(user=user, password=data["password"], actor=request.user)
        return Response(UserSerializer(self.get_object()).data)


# --------------------------------------------------------------------------------------------------
# API tokens
# --------------------------------------------------------------------------------------------------


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(read_only=True)
    systems = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id", "user", "name", "prefix", "systems", "created_at", "created_by", "expires_at",
            "last_used_at", "revoked_at", "active",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, token: ApiToken) -> bool:
        return not token.refusal(clock.now())


class ApiTokenCreateSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), help_text="A machine account with the publisher role."
    )
    name = TextField(
        max_length=100, allow_blank=True, default="", help_text="Where it is used, e.g. shop server."
    )
    systems = serializers.SlugRelatedField(
        slug_field="slug",
        many=True,
        queryset=System.objects.all(),
        help_text="The systems it may publish for.",
    )
    days = StrictIntegerField(
        default=ApiToken.DEFAULT_DAYS, min_value=1, max_value=max(ApiToken.DAYS_CHOICES),
        help_text=f"How long it lasts: one of {', '.join(map(str, ApiToken.DAYS_CHOICES))} days.",
    )  # fmt: skip


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(help_text="The token itself: shown in this answer only, never again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiTokenFilterSerializer(serializers.Serializer):
    user = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only this account's."
    )


class ApiTokenViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ApiTokenSerializer
    parser_classes = [StrictJSONParser]
    permission_classes = [IsAdminOnly]

    def get_queryset(self):
        tokens = (
            ApiToken.objects.select_related("user", "created_by").prefetch_related("systems").order_by("-id")
        )
        if self.action == "list":
            filters = read_query(ApiTokenFilterSerializer, self.request.query_params)
            if "user" in filters:
                tokens = tokens.filter(user_id=filters["user"])
        return tokens

    @extend_schema(parameters=[ApiTokenFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if not data["systems"]:
            raise ValidationError({"systems": ["Choose at least one system the token may publish for."]})
        with refusals():
            token, key = api_token_create(
                user=data["user"], systems=data["systems"], name=data["name"], days=data["days"],
                actor=request.user,
            )  # fmt: skip
        response = Response({**ApiTokenSerializer(token).data, "key": key}, status=201)
        response["Cache-Control"] = "no-store"  # the key is shown once; no cache keeps a copy
        return response

    @extend_schema(
        request=None,
        responses={200: ApiTokenSerializer, 409: OpenApiResponse(description="It signs this very request.")},
        description="Revoke it at once (again: no change).",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None, format=None):
        token = self.get_object()
        if request.auth == token:
            # Like deactivating yourself on the Users page: a client would lock itself out mid-task.
            return error_response(
                409, "this request is signed with this token: revoke it from another session"
            )
        api_token_revoke(token=token, actor=request.user)
        return Response(ApiTokenSerializer(token).data)
