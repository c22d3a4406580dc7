"""The platform cache's entries of phone numbers (read by ``telephony.queries``; a number's save drops
its entry, so this sits below the models and imports none of them)."""

from __future__ import annotations

from tenants.cache import forget_platform_cached


def _number_cache_key(number: str) -> str:
    return f"phone-number:{number}"


def forget_cached_number(number: str) -> None:
    forget_platform_cached(_number_cache_key(number))
