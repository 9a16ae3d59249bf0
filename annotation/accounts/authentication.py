"""Personal API tokens on the wire: ``Authorization: Bearer <token>`` (or ``Token <token>``).

Named by dotted path in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``. DRF imports it while it
defines its own ``APIView``, so this module imports only DRF's authentication basics at the top; the
token lookup (models) is imported when a request arrives. ``annotation.accounts.api`` documents the
scheme in the OpenAPI schema.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give exactly one token.")
        from .tokens import token_user

        raw = header[1].decode(errors="replace")
        token = token_user(raw)
        if token is None:
            from .tokens import token_of_deactivated_user

            if token_of_deactivated_user(raw):
                # Known token, deactivated owner: refused (403) with the reason, not "unknown token".
                raise exceptions.PermissionDenied("This account has been deactivated.")
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
