"""WebSocket routes. The voice session finds its tenant from a signed token, not from the host."""

from __future__ import annotations

websocket_urlpatterns: list = []
