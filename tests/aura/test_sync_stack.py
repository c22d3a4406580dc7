"""The middleware stack runs sync, in one thread, under ASGI (aura.middleware.SyncStackMiddleware)."""

from __future__ import annotations

import pytest
from django.test import AsyncClient
from django.utils.deprecation import MiddlewareMixin


@pytest.mark.django_db
async def test_no_middleware_hops_between_the_event_loop_and_a_thread(monkeypatch):
    """Each async-mode middleware ran its request and response hooks through a thread hop each, about
    ten round trips a request through the event loop that carries the voice sessions."""
    async_mode: list[str] = []
    original = MiddlewareMixin.__acall__

    async def counted(self: MiddlewareMixin, request: object) -> object:
        async_mode.append(type(self).__name__)
        return await original(self, request)

    monkeypatch.setattr(MiddlewareMixin, "__acall__", counted)

    response = await AsyncClient(HTTP_HOST="localhost").get("/no-such-page/")

    assert response.status_code == 404
    assert async_mode == []
