"""Waiting, in end-to-end tests, for what a server process stores in the database off its hot path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import sync_to_async

T = TypeVar("T")


async def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """Run the synchronous ``check`` (ORM allowed) until it returns something truthy, or time runs out;
    returns its last result either way, for the test to assert on."""
    deadline = time.monotonic() + timeout
    while True:
        result = await sync_to_async(check)()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)
