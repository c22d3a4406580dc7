"""Sliding-window rate limits (core.ratelimit): never more than the limit in any window, also across the
boundary where a fixed window let through twice the limit."""

from __future__ import annotations

import random
import uuid

from core.ratelimit import hit, peek


def _bucket() -> str:
    return f"test:{uuid.uuid4().hex}"


def test_a_burst_at_the_end_of_a_minute_leaves_nothing_for_the_start_of_the_next() -> None:
    bucket = _bucket()
    # 20 requests at 119.5 s, just before the boundary a fixed one-minute window restarts at (120 s).
    assert all(hit(bucket, limit=20, window_s=60, now=119.5).allowed for _ in range(20))

    after_boundary = [hit(bucket, limit=20, window_s=60, now=120.5) for _ in range(20)]

    assert not any(decision.allowed for decision in after_boundary)  # a fixed window allowed all 20: 40 in 1 s
    assert after_boundary[0].retry_after_s == 59  # 119.5 + 60 - 120.5
    assert not hit(bucket, limit=20, window_s=60, now=179.4).allowed
    assert hit(bucket, limit=20, window_s=60, now=179.6).allowed  # the first ones left the window


def test_refused_requests_are_not_counted_and_peek_counts_nothing() -> None:
    bucket = _bucket()
    for _ in range(3):
        hit(bucket, limit=3, window_s=10, now=100.0)
    for _ in range(50):
        assert not hit(bucket, limit=3, window_s=10, now=105.0).allowed
        assert not peek(bucket, limit=3, window_s=10, now=105.0).allowed

    assert peek(bucket, limit=3, window_s=10, now=110.1).allowed
    assert peek(bucket, limit=3, window_s=10, now=110.1).allowed  # still: peeking took no place
    assert hit(bucket, limit=3, window_s=10, now=110.1).allowed


def test_no_client_gets_more_than_the_limit_in_any_window() -> None:
    bucket, limit, window = _bucket(), 10, 60.0
    rng = random.Random(20)
    moments = sorted(rng.uniform(0, 300) for _ in range(400))

    allowed = [t for t in moments if hit(bucket, limit=limit, window_s=window, now=t).allowed]

    for index, start in enumerate(allowed):
        in_window = [t for t in allowed[index:] if t < start + window]
        assert len(in_window) <= limit, (start, in_window)
    assert len(allowed) >= limit * 4  # and it is a limit, not a wall: 300 s hold at least 4 full windows' worth
