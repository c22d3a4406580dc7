"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import gc
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aura.settings.base")

from aura.request_threads import http_application

django_asgi_app = http_application()  # Django's, each request on a kept thread (aura/request_threads.py)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from aura.routing import websocket_urlpatterns  # noqa: E402
from aura.warm_up import warm_up  # noqa: E402
from core.shutdown import install_if_under_daphne  # noqa: E402
from voice.audio.silero import preload as preload_speech_model  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

install_if_under_daphne(settings.AURA_SHUTDOWN_GRACE_S)
# Speech detection's model is shared by every session: loaded (or its problem logged) before the first.
preload_speech_model()

# The URLconfs and what they import, loaded now rather than on the event loop at the first request
# (a 26-34 ms stall of every live session; aura/warm_up.py), and before the freeze below.
warm_up()

# Everything loaded so far lives as long as the process: move it out of the collector's sight, so a
# full collection under load walks only what sessions allocate (bench.voice at 200 sessions: gen-2
# pauses of 100–130 ms became 20–70 ms).
gc.freeze()
# A full collection walks every object the live sessions hold: at 200 sessions one took 40-100 ms, and
# every session's audio waited. They come after this many middle-generation collections (Python's
# default is 10); cyclic garbage that reaches the oldest generation is freed ten times less often.
gc.set_threshold(700, 10, settings.AURA_GC_FULL_AFTER)

# Database work runs on worker threads (run_in_tenant); the event loop waits for the GIL whenever one
# of them holds it, by default up to 5 ms a switch. Audio frames and reply pacing need it sooner.
sys.setswitchinterval(settings.AURA_GIL_SWITCH_INTERVAL_S)

if settings.AURA_LOOP_LAG_LOG_S > 0 and "daphne.server" in sys.modules:  # docs/benchmarks.md, the tail
    import asyncio

    from twisted.internet import reactor

    from core.looplag import start_probe

    # daphne's loop exists once the reactor runs (as for core.shutdown's handler).
    reactor.callWhenRunning(lambda: start_probe(settings.AURA_LOOP_LAG_LOG_S, asyncio.get_event_loop()))
