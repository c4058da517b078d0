"""API sign-in with the hub's hashed tokens: `Authorization: Token <key>` or `Bearer <key>`.

An expired, revoked or unknown token is a 401 that says which; a valid one is `request.auth`, so
the publish API can read the systems it is bound to."""

from rest_framework import authentication, exceptions

from hub.models import ApiToken
from hub.pipeline import clock

KEYWORDS = ("token", "bearer")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() not in KEYWORDS:
            return None  # not ours: another class (the session) may sign the request in
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header: send 'Token <key>' or 'Bearer <key>', with no spaces in the key"
            )
        try:
            key = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("the API token contains characters no token has") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_of(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("unknown API token: check that it was copied whole")
        now = clock.now()
        if refusal := token.refusal(now):
            raise exceptions.AuthenticationFailed(refusal + "; ask an admin for a new one")
        token.mark_used(now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Token realm="api"'
