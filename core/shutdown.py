"""Graceful shutdown of a daphne process.

On SIGTERM the process stops taking new voice sessions (readiness turns 503, new WebSocket
connections are closed with 4012), tells every connected widget to reconnect (close code 4012: the
widget resumes the same conversation, through the load balancer, on another process), waits for the
sessions to store what they hold, and stops, all within ``AURA_SHUTDOWN_GRACE_S``. A second SIGTERM
stops at once.

daphne's own SIGTERM path cancels every connection without a word; so the handler is installed on
the Twisted reactor once it runs, in place of Twisted's, and stops the reactor itself when drained.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

Drainer = Callable[[float], Awaitable[None]]  # given the deadline (monotonic seconds)

_drainers: list[Drainer] = []
_draining = False


def is_draining() -> bool:
    return _draining


def on_drain(drainer: Drainer) -> None:
    """Register work to finish before the process stops (e.g. ending live voice sessions)."""
    _drainers.append(drainer)


async def drain(grace_s: float) -> None:
    """Enter draining and run every drainer, bounded by ``grace_s`` in total."""
    global _draining
    _draining = True
    deadline = time.monotonic() + grace_s
    started = time.monotonic()
    try:
        async with asyncio.timeout(grace_s):
            results = await asyncio.gather(*(drainer(deadline) for drainer in _drainers), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    logger.error("a shutdown step failed", exc_info=result)
    except TimeoutError:
        logger.warning("shutdown grace of %.0f s ran out; stopping anyway", grace_s)
    logger.info("drained in %.0f ms", (time.monotonic() - started) * 1000)


def install_on_reactor(reactor: Any, grace_s: float) -> None:
    """Called once the reactor runs (after Twisted installed its own handlers, which this replaces)."""
    loop = asyncio.get_event_loop()

    async def drain_then_stop() -> None:
        stop_listening(reactor)
        try:
            await drain(grace_s)
        finally:
            if reactor.running:
                reactor.stop()

    def on_signal(signum: int, frame: object) -> None:
        if _draining:
            logger.warning("second %s: stopping now", signal.Signals(signum).name)
            loop.call_soon_threadsafe(reactor.stop)
            return
        logger.info("%s: draining (grace %.0f s)", signal.Signals(signum).name, grace_s)
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(drain_then_stop()))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def stop_listening(reactor: Any) -> None:
    """Close the listening sockets: new connections are refused at once, so a proxy (nginx
    ``proxy_next_upstream error``) sends them to another process instead of this draining one."""
    from twisted.internet import tcp

    for reader in list(reactor.getReaders()):
        if isinstance(reader, tcp.Port):
            reader.stopListening()


def install_if_under_daphne(grace_s: float) -> None:
    """Hook into the Twisted reactor when this process is a daphne server (not under tests' ASGI)."""
    import sys

    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.callWhenRunning(install_on_reactor, reactor, grace_s)
