"""Visitor ids: the one rule every door checks (widget session, ``session.start``, the REST API), and the
namespaces that keep one channel's visitors from being taken for another's.

- Ids a tenant chooses (the REST API's ``visitor_id``, a signed-in user a site vouches for with an
  identity hash) are stored as they are, so the same person meets the same profile on every channel.
- Anonymous widget visitors get an id the platform mints: ``anon:`` and 22 random characters. No
  tenant-chosen id may start with ``anon:``, so the two can never collide ("crm-4711" is never an
  anonymous visitor, and an anonymous visitor is never "crm-4711").
- Phone callers are ``phone:`` and a keyed hash of their number (``telephony.queries.caller_visitor_id``).
"""

from __future__ import annotations

from collections.abc import Callable

MAX_VISITOR_ID_CHARS = 128
ANONYMOUS_PREFIX = "anon:"
PHONE_PREFIX = "phone:"  # callers: a keyed hash of their number (telephony.queries.caller_visitor_id)
RESERVED_PREFIXES = (ANONYMOUS_PREFIX, PHONE_PREFIX)  # namespaces only the platform mints ids in


class InvalidVisitorIdError(ValueError):
    """A visitor id that breaks the rule; its message says which part, for a 400 or an error event."""


def check_visitor_id(value: object, *, chosen_by_client: bool = True) -> str:
    """``value`` if it is a valid visitor id, else InvalidVisitorIdError.

    The rule: a string of 1–128 characters, every one printable (``str.isprintable``: no NUL or other
    control character, no line separator, no lone surrogate). An id chosen by a client (not minted by the
    platform) may not start with ``anon:`` or ``phone:``, the namespaces of the platform's anonymous widget
    visitors and of callers.
    """
    if not isinstance(value, str):
        raise InvalidVisitorIdError("visitor_id must be a string.")
    if not value:
        raise InvalidVisitorIdError("visitor_id must not be empty.")
    if len(value) > MAX_VISITOR_ID_CHARS:
        raise InvalidVisitorIdError(f"visitor_id must be at most {MAX_VISITOR_ID_CHARS} characters.")
    if not value.isprintable():
        raise InvalidVisitorIdError(
            "visitor_id must be printable characters only (no control characters, NUL or lone surrogates)."
        )
    if chosen_by_client and (reserved := next((p for p in RESERVED_PREFIXES if value.startswith(p)), None)):
        raise InvalidVisitorIdError(f'visitor_id must not start with "{reserved}": it is reserved.')
    return value


def is_anonymous(visitor_id: str) -> bool:
    return visitor_id.startswith(ANONYMOUS_PREFIX)


# Forgetting a visitor spans apps (their conversations and recordings here, their phone calls in
# telephony), so the whole of it is one workflow above the apps: ``aura.workflows.visitors.forget_visitor``.
# The doors a visitor asks through sit below it (the voice session's tool, the API's visitor-profile
# delete): they call ``forget_visitor_everywhere``, which the composition root connects to that workflow
# at start-up (``aura.wiring``).
VisitorForgetting = Callable[..., object]
_FORGETTING: list[VisitorForgetting] = []


def forget_visitors_with(forget: VisitorForgetting) -> None:
    """Connect ``forget(*, visitor_id, conversation_id)``: the one way a visitor is forgotten."""
    _FORGETTING[:] = [forget]


def forget_visitor_everywhere(*, visitor_id: str, conversation_id: object = None) -> None:
    """Forget the visitor in every app (in the current tenant's schema) through the connected workflow."""
    if not _FORGETTING:
        raise RuntimeError("nothing forgets visitors: aura.wiring.connect() was not run")
    _FORGETTING[0](visitor_id=visitor_id, conversation_id=conversation_id)
