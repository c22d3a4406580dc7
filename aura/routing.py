"""WebSocket routes. The voice session finds its tenant from a signed token, not from the host."""

from __future__ import annotations

from django.urls import path

from voice.consumers import VoiceConsumer

websocket_urlpatterns = [
    path("ws/voice/", VoiceConsumer.as_asgi()),
]
