"""What every log line says about where it comes from: the request or voice session, and the organization.

Values live in context variables: a request's middleware or a session's consumer binds them once, and
every task it starts inherits them (asyncio copies the context into each new task).
"""

from __future__ import annotations

import contextvars

_request: contextvars.ContextVar[str] = contextvars.ContextVar("aura_request", default="")
_session: contextvars.ContextVar[str] = contextvars.ContextVar("aura_session", default="")
_organization: contextvars.ContextVar[str] = contextvars.ContextVar("aura_organization", default="")


def bind(*, request: str | None = None, session: str | None = None, organization: str | None = None) -> None:
    if request is not None:
        _request.set(request)
    if session is not None:
        _session.set(session)
    if organization is not None:
        _organization.set(organization)


def current() -> dict[str, str]:
    return {
        key: value
        for key, value in (
            ("request_id", _request.get()),
            ("session_id", _session.get()),
            ("organization", _organization.get()),
        )
        if value
    }
