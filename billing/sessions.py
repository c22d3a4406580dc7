"""Concurrent voice sessions per organization, counted in Redis, and the quota a live session watches.

Slots: one sorted set per organization (``aura:billing:sessions:<id>``), member = the connection,
score = when the slot lapses. A Lua script drops lapsed members, checks the count against the plan's
limit and adds the new one in one step, so two processes can never both take the last slot. A
live session renews its slot every third of ``AURA_BILLING_SESSION_SLOT_TTL_S`` and removes it when
it ends; a process that crashes stops renewing, and its slots lapse after the TTL (60 s by default).

If Redis is unreachable, sessions are admitted (as the rate limits do): a Redis outage must not
take every assistant offline. The hard cap is then still enforced from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import redis
from django.conf import settings
from redis.exceptions import RedisError

from billing.queries import CONCURRENT_MESSAGE, QuotaStatus, quota_status
from core.redis import platform_redis, platform_redis_sync
from tenants.models import Organization
from tenants.tenancy import run_in_public

logger = logging.getLogger(__name__)

ALL_SESSIONS_KEY = "aura:billing:sessions"

# KEYS: the organization's set, the set of every session. ARGV: limit (0: none), ttl seconds,
# member, member in the global set. Renewing a slot this connection already holds always succeeds.
_ACQUIRE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
local limit = tonumber(ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], t + ttl, ARGV[3])
redis.call('ZADD', KEYS[2], t + ttl, ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl * 2)
redis.call('EXPIRE', KEYS[2], ttl * 2)
return 1
"""
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""


def slots_key(organization_id: int) -> str:
    return f"aura:billing:sessions:{organization_id}"


def _redis() -> redis.Redis:
    return platform_redis_sync()  # the process's one bounded pool (replies are bytes)


def _ttl() -> int:
    return max(3, settings.AURA_BILLING_SESSION_SLOT_TTL_S)


class SessionRefusedError(Exception):
    """A new session is refused: ``code`` for machines, ``message`` for the visitor."""

    def __init__(self, code: str, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def as_event(self) -> dict[str, object]:
        return {"type": "error", "code": self.code, "message": self.message}


def _refusal(status: QuotaStatus) -> SessionRefusedError:
    return SessionRefusedError(status.code, status.message, http_status=402)


def _busy() -> SessionRefusedError:
    return SessionRefusedError("concurrent_limit", CONCURRENT_MESSAGE, http_status=429)


# ------------------------------------------------------------------ sync: POST /widget/session
def sessions_in_use(organization_id: int) -> int:
    return int(_redis().zcount(slots_key(organization_id), time.time(), "+inf"))


def check_new_session(organization_id: int) -> None:
    """Before a token is issued: raise SessionRefusedError at the hard cap or when every slot is taken.

    Only a look: the slot itself is taken atomically when the WebSocket opens.
    """
    status = quota_status(organization_id)
    if not status.allows_sessions:
        raise _refusal(status)
    if status.max_concurrent:
        try:
            in_use = sessions_in_use(organization_id)
        except RedisError as exc:
            logger.warning("session slots unavailable, not checking the concurrent limit: %s", exc)
            return
        if in_use >= status.max_concurrent:
            raise _busy()


def active_sessions_by_organization() -> Counter[int]:
    """Live sessions now, per organization id (lapsed slots are not counted)."""
    members = _redis().zrangebyscore(ALL_SESSIONS_KEY, time.time(), "+inf")
    return Counter(int(member.split(b":", 1)[0]) for member in members)


def take_slot_sync(organization_id: int, member: str, limit: int) -> bool:
    """The atomic take, for tests and tools that are not async."""
    script = _redis().register_script(_ACQUIRE)
    keys = [slots_key(organization_id), ALL_SESSIONS_KEY]
    return bool(script(keys=keys, args=[limit, _ttl(), member, f"{organization_id}:{member}"]))


def hold_slot_sync(organization_id: int, member: str, *, ttl_s: int) -> None:
    """Take a slot for ``ttl_s`` for what will become a session (an outbound call while it rings), atomically
    against the plan's limit: raise SessionRefusedError at the hard cap or when every slot is taken. The
    session that follows passes the same ``member`` to ``open_session``; ``release_slot_sync`` gives it
    back when no session follows (the callee did not answer)."""
    status = quota_status(organization_id)
    if not status.allows_sessions:
        raise _refusal(status)
    script = _redis().register_script(_ACQUIRE)
    keys = [slots_key(organization_id), ALL_SESSIONS_KEY]
    try:
        taken = script(keys=keys, args=[status.max_concurrent, ttl_s, member, f"{organization_id}:{member}"])
    except RedisError as exc:
        logger.warning("session slots unavailable, not checking the concurrent limit: %s", exc)
        return
    if not taken:
        raise _busy()


def release_slot_sync(organization_id: int, member: str) -> None:
    try:
        script = _redis().register_script(_RELEASE)
        script(keys=[slots_key(organization_id), ALL_SESSIONS_KEY], args=[member, f"{organization_id}:{member}"])
    except RedisError as exc:
        logger.warning("could not release session slot %s (it lapses by itself): %s", member, exc)


# ------------------------------------------------------------------ async: the voice session
@dataclass
class SessionQuota:
    """A live session's slot and its view of the quota (read at turn boundaries, never per frame)."""

    organization_id: int
    member: str
    limit: int
    hard_cap: bool = False  # only a hard cap is watched during the session; soft caps only alert
    holds_slot: bool = True
    exhausted: bool = False  # the hard cap was reached (or the subscription cancelled) since the session began
    _renewer: asyncio.Task[None] | None = None
    _checks: set[asyncio.Task[None]] = field(default_factory=set)
    _released: bool = False

    def start_renewing(self) -> None:
        if self.holds_slot:
            self._renewer = asyncio.create_task(self._renew(), name=f"session-slot:{self.member}")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(_ttl() / 3)
            try:
                await _acquire_async(self.organization_id, self.member, 0)  # renew; never refused
            except RedisError as exc:
                logger.warning("could not renew session slot %s: %s", self.member, exc)

    def check_after(self, written: asyncio.Future[object]) -> None:
        """Once a turn (and its usage) is stored, look at the quota again, in the background.

        Only under a hard cap: a soft-capped or unlimited plan costs the session no query at all.
        """
        if not self.hard_cap:
            return

        async def check() -> None:
            with contextlib.suppress(Exception):
                await written
            try:
                status = await run_in_public(quota_status, self.organization_id)
            except Exception:
                logger.exception("quota check failed for organization %s", self.organization_id)
                return
            self.exhausted = not status.allows_sessions

        task = asyncio.create_task(check())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._renewer is not None:
            self._renewer.cancel()
        for task in list(self._checks):
            task.cancel()
        if not self.holds_slot:
            return
        try:
            script = platform_redis().register_script(_RELEASE)
            await script(
                keys=[slots_key(self.organization_id), ALL_SESSIONS_KEY],
                args=[self.member, f"{self.organization_id}:{self.member}"],
            )
        except RedisError as exc:
            logger.warning("could not release session slot %s (it lapses by itself): %s", self.member, exc)


async def _acquire_async(organization_id: int, member: str, limit: int) -> bool:
    script = platform_redis().register_script(_ACQUIRE)
    keys = [slots_key(organization_id), ALL_SESSIONS_KEY]
    return bool(await script(keys=keys, args=[limit, _ttl(), member, f"{organization_id}:{member}"]))


async def open_session(organization: Organization, *, member: str = "") -> SessionQuota:
    """At WebSocket connect: check the hard cap, then take a slot atomically. Raises SessionRefusedError.

    ``member``: a slot held already for this session (``hold_slot_sync``, an outbound call that rang), which
    the session takes over (renewing a held slot always succeeds); by default a new one."""
    status = await run_in_public(quota_status, organization.pk)
    if not status.allows_sessions:
        raise _refusal(status)
    member = member or str(uuid.uuid4())
    quota = SessionQuota(
        organization_id=organization.pk, member=member, limit=status.max_concurrent, hard_cap=status.hard_cap
    )
    try:
        taken = await _acquire_async(organization.pk, member, status.max_concurrent)
    except RedisError as exc:
        logger.warning("session slots unavailable, admitting without a slot: %s", exc)
        quota.holds_slot = False
        return quota
    if not taken:
        raise _busy()
    quota.start_renewing()
    return quota
