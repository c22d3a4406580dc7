"""Scopes: safe methods need ``read``, others ``write``; a view may ask more (``admin``) per action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants.models import ApiKey, ApiScope

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


def required_scope(request: Request, view: APIView) -> str:
    per_action = getattr(view, "action_scopes", {}).get(getattr(view, "action", None))
    if per_action:
        return per_action
    if request.method in SAFE_METHODS:
        return getattr(view, "read_scope", ApiScope.READ)
    return getattr(view, "write_scope", ApiScope.WRITE)


class HasScope(BasePermission):
    message = "This API key may not do that."
    code = "insufficient_scope"

    def has_permission(self, request: Request, view: APIView) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False  # DRF answers 401: no credentials were sent
        scope = required_scope(request, view)
        if key.grants(scope):
            return True
        self.message = f"This API key lacks the “{scope}” scope."
        return False
