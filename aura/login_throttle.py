"""Admin logins throttled after repeated failures (django-axes), per account and per client.

The platform's staff log in on the platform host (public schema) and each organization's admins on its own
host (its schema): the same e-mail address can be an admin of two organizations, so an account is
``<schema>:<username>``, and locking one out never locks out its namesake elsewhere. A client (its address)
is counted over every host. The counts live in Redis (axes' cache handler on the platform cache), not in
tables: a flood of failed logins costs no database write, and there is no per-schema table to migrate.
An unknown account is counted and answered exactly like a wrong password. While Redis is down logins are
not throttled (as the API's rate limits fail open): an outage must not lock every admin out.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def account(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """``AXES_USERNAME_CALLABLE``: the username as typed, qualified by the schema the login is for."""
    field = settings.AXES_USERNAME_FORM_FIELD
    username = (credentials or {}).get(field) or request.POST.get(field, "")
    schema = getattr(getattr(request, "tenant", None), "schema_name", None) or connection.schema_name
    return f"{schema}:{str(username)[:150]}"


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' check before Django's ``ModelBackend``. Without a request (a management command, a test's
    ``Client.login``) there is no client to throttle: the check is skipped instead of refusing the call."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class FailOpenCacheHandler(AxesCacheHandler):
    """axes' cache handler that lets logins through, unthrottled, while Redis cannot be reached."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        try:
            return super().get_failures(request, credentials)
        except RedisError as exc:
            logger.warning("login throttle unavailable, not checking failures: %s", exc)
            return 0

    def user_login_failed(
        self, sender: object, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except RedisError as exc:
            logger.warning("login throttle unavailable, failure not counted: %s", exc)

    def user_logged_in(self, sender: object, request: Any, user: Any, **kwargs: Any) -> None:
        try:
            super().user_logged_in(sender, request, user, **kwargs)
        except RedisError as exc:
            logger.warning("login throttle unavailable, failures not reset: %s", exc)
