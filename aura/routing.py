"""WebSocket routes. A voice session (widget or phone call) finds its tenant from a signed token, not from the host."""

from __future__ import annotations

from django.urls import path

from telephony.consumers import TwilioMediaConsumer
from voice.consumers import VoiceConsumer

websocket_urlpatterns = [
    path("ws/voice/", VoiceConsumer.as_asgi()),
    path("ws/twilio/", TwilioMediaConsumer.as_asgi()),  # phone calls: Twilio Media Streams (docs/telephony.md)
]
