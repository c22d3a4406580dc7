"""Django's HTTP requests under daphne, each on a worker thread kept from one request to the next.

Every middleware and view here is sync, so a request's code runs on a worker thread. Django's
``ASGIHandler`` gives each request an asgiref ``ThreadSensitiveContext`` without an executor: asgiref
then starts a thread for the request and, when it ends, another one to join it. Both starts happen on
the event loop, which waits until the new thread runs: while 200 phone calls rang in over 10 s (a
voice webhook each, then a status callback), py-spy put 4 % of the loop's samples in ``Thread.start``,
and the loop carries every live session's audio (docs/benchmarks.md, "Threads for requests").

``RequestThreadsHandler`` hands each request an idle one-thread executor instead (a new one only when
all are busy) and takes it back when the request ends: one request at a time on a thread, its sync code
on that one thread, as before, without the thread starts. An executor that still has work when its
request ends (a client that went away while its view ran) is not reused: it is shut down once that
work is done, as asgiref would. At most ``keep_idle`` are kept.

What a thread keeps between requests: Django's database wrappers are per thread, and django-tenants
keeps the schema on them. A fresh thread's wrapper starts in the public schema, and so does a kept one's:
before a kept thread takes its next request, its wrappers are set back to the public schema (the
tenant middleware does that too, but ``/healthz``, ``/readyz`` and ``/metrics`` answer before it).
Connections themselves go back to the pool at the end of every request (``request_finished``), and the
rest of a request's state (log context, URL configuration, language, time zone) lives in context
variables, not in the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.db import connections


class RequestThread(ThreadPoolExecutor):
    """A one-thread executor that knows whether work it was given is still running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        # A done callback runs on the worker thread, or on the loop's (a future done at once, or one
        # cancelled before it ran): both may count at the same time.
        self._count_lock = threading.Lock()
        self._unfinished = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self._unfinished += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._count_lock:
            self._unfinished -= 1

    @property
    def idle(self) -> bool:
        return self._unfinished == 0


def _public_schema() -> None:
    """On a kept thread, before its next request: its database wrappers back in the public schema."""
    for wrapper in connections.all(initialized_only=True):
        set_public = getattr(wrapper, "set_schema_to_public", None)
        if set_public is not None:
            set_public()


class RequestThreads:
    """Idle request threads, used from the event loop's thread only."""

    def __init__(self, keep_idle: int) -> None:
        self.keep_idle = keep_idle
        self._idle: list[RequestThread] = []
        self.started = 0  # threads made so far

    def borrow(self) -> RequestThread:
        if self._idle:
            thread = self._idle.pop()
            thread.submit(_public_schema)  # runs before the request's code: one worker, first in first out
            return thread
        self.started += 1
        return RequestThread()

    def give_back(self, thread: RequestThread) -> None:
        if thread.idle and len(self._idle) < self.keep_idle:
            self._idle.append(thread)
        else:
            thread.shutdown(wait=False)  # its thread ends once its work is done; the loop does not wait

    @property
    def kept(self) -> int:
        """Idle threads waiting for the next requests."""
        return len(self._idle)


class RequestThreadsHandler(ASGIHandler):
    """Django's ASGI handler, each request on a borrowed request thread."""

    def __init__(self, keep_idle: int) -> None:
        super().__init__()
        self.threads = RequestThreads(keep_idle)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self.threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(thread)


def http_application() -> RequestThreadsHandler:
    """What ``django.core.asgi.get_asgi_application`` gives, with request threads kept
    (``AURA_REQUEST_THREADS_IDLE`` of them at most)."""
    django.setup(set_prefix=False)
    from django.conf import settings

    return RequestThreadsHandler(settings.AURA_REQUEST_THREADS_IDLE)
