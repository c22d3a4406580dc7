"""HTTP requests on worker threads kept from one request to the next (aura.request_threads)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from django.http import HttpRequest, JsonResponse

from aura import middleware
from aura.request_threads import RequestThreads, RequestThreadsHandler


def _thread_name(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"thread": threading.current_thread().name, "ident": threading.get_ident()})


@pytest.fixture
def handler(monkeypatch) -> RequestThreadsHandler:
    # /healthz answers on any host without the database: here it says which thread ran it
    monkeypatch.setitem(middleware._HOSTLESS, "/healthz", _thread_name)
    return RequestThreadsHandler(keep_idle=2)


async def _get(handler: RequestThreadsHandler, path: str = "/healthz") -> dict:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    app = ApplicationCommunicator(handler, scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(5)
    body = await app.receive_output(5)
    await app.wait(5)
    assert start["status"] == 200, start
    import json

    return json.loads(body["body"])


async def test_requests_one_after_another_run_on_one_kept_thread(handler: RequestThreadsHandler) -> None:
    answers = [await _get(handler) for _ in range(5)]
    assert len({answer["ident"] for answer in answers}) == 1  # Django's handler started a thread per request
    assert answers[0]["thread"].startswith("request")
    assert (handler.threads.started, handler.threads.kept) == (1, 1)


async def test_requests_at_once_each_get_a_thread_of_their_own(handler: RequestThreadsHandler) -> None:
    answers = await asyncio.gather(*(_get(handler) for _ in range(4)))
    assert all(answer["thread"].startswith("request") for answer in answers)
    assert handler.threads.started >= 2 and handler.threads.kept <= 2  # at most keep_idle kept
    again = await _get(handler)
    assert again["ident"] in {answer["ident"] for answer in answers}


async def test_a_burst_of_requests_leaves_no_more_threads_than_the_bound(handler: RequestThreadsHandler) -> None:
    """A flood of requests at once needs a thread each while they run (as Django's own handler did);
    afterwards at most keep_idle stay, the others end."""
    before = _request_threads()
    answers = await asyncio.gather(*(_get(handler) for _ in range(40)))
    assert len(answers) == 40
    assert handler.threads.kept <= 2
    deadline = time.monotonic() + 5
    while _request_threads() - before > 2:
        assert time.monotonic() < deadline, f"{_request_threads() - before} request threads still alive"
        await asyncio.sleep(0.01)


def _request_threads() -> int:
    return sum(thread.name.startswith("request") for thread in threading.enumerate())


def test_a_thread_still_busy_when_its_request_ended_is_not_kept() -> None:
    threads = RequestThreads(keep_idle=4)
    thread = threads.borrow()
    release = threading.Event()
    work = thread.submit(release.wait, 5)  # a view still running for a client that went away
    threads.give_back(thread)
    assert threads.kept == 0  # the next request would have waited behind it
    release.set()
    assert work.result(5) is True
    fresh = threads.borrow()
    assert fresh is not thread and threads.started == 2
    fresh.submit(int).result(5)
    _until_idle(fresh)  # result() may return before the worker ran the future's done callbacks
    threads.give_back(fresh)
    assert threads.kept == 1
    assert threads.borrow() is fresh


def _until_idle(thread, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not thread.idle:
        assert time.monotonic() < deadline, "the request thread never went idle"
        time.sleep(0.001)


def _leave_a_tenant_schema(request: HttpRequest) -> JsonResponse:
    connection.set_schema("t_somebody_else")  # as a tenant's request leaves the thread's database wrapper
    return JsonResponse({"schema": connection.schema_name})


def _schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"schema": connection.schema_name, "ident": threading.get_ident()})


async def test_a_kept_thread_starts_its_next_request_in_the_public_schema(monkeypatch) -> None:
    """django-tenants keeps the schema on the thread's database wrapper; /readyz answers before the
    tenant middleware would set it, and checked migrations in whatever schema the last request left."""
    handler = RequestThreadsHandler(keep_idle=1)
    monkeypatch.setitem(middleware._HOSTLESS, "/healthz", _leave_a_tenant_schema)
    assert (await _get(handler))["schema"] == "t_somebody_else"
    monkeypatch.setitem(middleware._HOSTLESS, "/healthz", _schema)
    following = await _get(handler)
    assert following["schema"] == "public"
    assert handler.threads.started == 1  # the same thread, kept
