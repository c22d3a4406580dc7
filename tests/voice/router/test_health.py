"""Circuit breakers and speed averages, shared through the real Redis the test session started."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from voice.router.candidates import Candidate
from voice.router.health import ProviderHealth, reset_shared_health, shared_health


@pytest.fixture
def candidate() -> Candidate:
    return Candidate("openai", f"breaker-{uuid.uuid4().hex[:8]}")


def _process() -> ProviderHealth:
    """A fresh view, as another process of the deployment would hold."""
    return ProviderHealth(failures_to_open=3, cooldown_s=0.3)


async def test_consecutive_failures_open_the_breaker_for_every_process(candidate: Candidate) -> None:
    one, other = _process(), _process()
    await one.record_failure(candidate, "unavailable: 500")
    await one.record_failure(candidate, "unavailable: 500")
    assert one.state(candidate) == "closed"
    await other.record_failure(candidate, "timeout: no first token")  # failures count across processes
    assert other.state(candidate) == "open"
    await one.refresh()
    assert one.state(candidate) == "open"
    assert one.get(candidate).last_error == "timeout: no first token"
    assert shared_health()[candidate.key].failures == 3


async def test_a_success_resets_the_count(candidate: Candidate) -> None:
    view = _process()
    await view.record_failure(candidate, "x")
    await view.record_failure(candidate, "x")
    await view.record_success(candidate, 120.0)
    await view.record_failure(candidate, "x")
    assert view.state(candidate) == "closed"
    assert view.get(candidate).failures == 1


async def test_after_the_cooldown_one_probe_in_the_deployment_and_its_outcome_decides(candidate: Candidate) -> None:
    one, other = _process(), _process()
    for _ in range(3):
        await one.record_failure(candidate, "x")
    await asyncio.sleep(0.35)
    await other.refresh()
    assert one.state(candidate) == other.state(candidate) == "half_open"
    assert await one.claim_probe(candidate) is True
    assert await other.claim_probe(candidate) is False  # the other process waits for the probe's outcome
    await one.record_failure(candidate, "still down")
    assert one.state(candidate) == "open"  # a failed probe re-opens at once (no need for three failures)
    await asyncio.sleep(0.35)
    await one.record_success(candidate, 200.0)
    await other.refresh()
    assert other.state(candidate) == "closed"
    assert other.get(candidate).failures == 0


async def test_a_rate_limit_opens_at_once_for_the_retry_after(candidate: Candidate) -> None:
    view = _process()
    await view.record_failure(candidate, "rate_limited", hold_open_s=7.0)
    health = view.get(candidate)
    assert health.state == "open"
    assert 6.5 < health.opened_until - time.time() <= 7.0


async def test_time_to_first_token_is_a_moving_average(candidate: Candidate) -> None:
    view = _process()
    await view.record_success(candidate, 100.0)
    await view.record_success(candidate, 200.0)
    assert view.first_token_ms(candidate) == pytest.approx(0.3 * 200 + 0.7 * 100)
    await view.refresh()
    assert view.first_token_ms(candidate) == pytest.approx(130.0)


async def test_staff_can_reset_a_breaker(candidate: Candidate) -> None:
    view = _process()
    await view.record_failure(candidate, "x", hold_open_s=60)
    reset_shared_health(candidate.key)
    await view.refresh()
    assert view.state(candidate) == "closed"
    assert candidate.key not in shared_health()
