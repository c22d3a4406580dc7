"""The widget in a real browser: Debian's chromium, a fake microphone fed from a speech WAV,
a host page on another origin, and the real daphne server with simulated providers."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import wave
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from aura.embedded_services import free_port
from conversations.models import Conversation, Turn
from tenants.models import WidgetKey
from tests.conftest import require_tool
from tests.voice.client import read_wav

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<style>body {{ font-family: serif; background: #fafaf9; }} button {{ font-size: 40px; }}</style></head>
<body><h1>A shop on another origin</h1><p>Host page styles must not leak into the widget.</p>
<script src="{platform}/static/aura/widget.js" data-key="{key}" data-title="Shop assistant" {extra} async></script>
</body></html>"""


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop on this thread; our ORM calls here are plain sync code."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _fake_microphone(tmp_path: Path, *parts: tuple[str, float]) -> Path:
    """A WAV for chromium's fake capture device: silence, then speech, in the order given."""
    rate, pcm = 16000, b""
    for name, seconds in parts:
        if name == "silence":
            pcm += b"\x00\x00" * int(rate * seconds)
        else:
            speech, speech_rate = read_wav(name)
            assert speech_rate == rate
            pcm += speech
    path = tmp_path / "microphone.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return path


class HostSite:
    """A customer's website on 127.0.0.1:<port>: an origin other than the platform's."""

    def __init__(self) -> None:
        self.html = b""
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(site.html)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def embed(self, platform: str, key: str, accent: str | None = None) -> None:
        extra = f'data-accent="{accent}"' if accent else ""
        self.html = HOST_PAGE.format(platform=platform, key=key, extra=extra).encode()


@contextlib.contextmanager
def _host_site():
    site = HostSite()
    threading.Thread(target=site.server.serve_forever, daemon=True).start()
    try:
        yield site
    finally:
        site.server.shutdown()


@contextlib.contextmanager
def _browser(microphone: Path | None):
    require_tool("chromium", "browser tests drive Debian's chromium")
    from playwright.sync_api import sync_playwright

    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if microphone is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
        ]
    else:  # a microphone exists, but the visitor says no to the permission prompt
        args += ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1000, "height": 720})
        finally:
            browser.close()


def _allow(tenant, origin: str) -> str:
    key = WidgetKey.objects.filter(organization=tenant.organization).order_by("pk").first()
    key.allowed_origins = [*key.allowed_origins, origin]
    key.save()
    return key.key


def _record_socket(page) -> list[tuple[str, object]]:
    """Every WebSocket frame, as ('sent'|'received', parsed JSON or the audio's response id)."""
    frames: list[tuple[str, object]] = []

    def on_socket(ws):
        def parse(direction):
            def handle(payload):
                if isinstance(payload, bytes):
                    frames.append((direction, int.from_bytes(payload[:4], "little")))
                else:
                    frames.append((direction, json.loads(payload)))

            return handle

        ws.on("framesent", parse("sent"))
        ws.on("framereceived", parse("received"))

    page.on("websocket", on_socket)
    return frames


def _events(frames, direction: str, kind: str) -> list[dict]:
    return [f for d, f in frames if d == direction and isinstance(f, dict) and f.get("type") == kind]


def _wait(predicate, timeout: float = 30.0, page=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)
    raise AssertionError("timed out")


def _screenshot(page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), animations="disabled", caret="hide")


def _assert_accessible(page, state: str, context: str | None = "aura-voice-widget") -> None:
    """axe-core (bundled by axe-playwright-python: nothing is fetched) finds no serious or critical
    violation in the widget, its Shadow DOM included (``context=None``: the whole page)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context).response
    assert results["testEngine"]["name"] == "axe-core"
    serious = [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"]])
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{state}: {serious}"


def _focused(page) -> str:
    """The focused element inside the widget's Shadow DOM, as tag.class ('' when focus is elsewhere)."""
    return page.evaluate(
        "() => { const e = AuraVoice.shadowRoot.activeElement;"
        " return e ? `${e.tagName.toLowerCase()}.${e.className}` : '' }"
    )


# Counts the page's microphone requests (a refused site must not ask for one).
COUNT_MICROPHONE_REQUESTS = """
window.microphoneRequests = 0;
const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => { window.microphoneRequests++; return ask(constraints); };
"""


def _embedded(daphne_server, tenant, site: HostSite, *, allowed: bool = True, accent: str | None = None) -> None:
    key = (
        _allow(tenant, site.origin)
        if allowed
        else WidgetKey.objects.filter(organization=tenant.organization).first().key
    )
    site.embed(daphne_server.base_url, key, accent)


def test_spoken_question_gets_a_played_reply_and_typing_works(daphne_server, alpha_with_canned_replies, tmp_path):
    alpha = alpha_with_canned_replies
    microphone = _fake_microphone(tmp_path, ("silence", 6.0), ("hours.wav", 0), ("silence", 30.0))
    with _host_site() as site, _browser(microphone) as page:
        _embedded(daphne_server, alpha, site)
        frames = _record_socket(page)
        states: list = []
        page.expose_function("auraState", lambda state, at: states.append((state, at)))
        page.goto(site.origin)
        page.wait_for_function("window.AuraVoice && window.AuraVoice.shadowRoot")
        page.evaluate("AuraVoice.addEventListener('aura:state', e => auraState(e.detail.state, performance.now()))")
        _assert_accessible(page, "closed")
        page.click("aura-voice-widget >> .launcher")

        _wait(lambda: _events(frames, "received", "response.done"), page=page)  # the greeting
        _screenshot(page, "widget-listening")
        _assert_accessible(page, "connected, demo mode")
        # The site's title stays in the header (the assistant's name is only the fallback).
        assert page.locator("aura-voice-widget >> .name").inner_text() == "Shop assistant"
        assert page.locator("aura-voice-widget >> .demo").is_visible()
        transcript = _wait(lambda: _events(frames, "received", "transcript.final"), timeout=40, page=page)
        done = _wait(
            lambda: [e for e in _events(frames, "received", "response.done") if e["response_id"] == 2],
            timeout=30,
            page=page,
        )[0]
        played = _wait(
            lambda: [e for e in _events(frames, "sent", "response.played") if e["response_id"] == 2],
            timeout=60,
            page=page,
        )[0]
        _screenshot(page, "widget-reply")
        _assert_accessible(page, "a reply longer than the transcript's height")

        # Chrome's capture path (44.1 kHz, noise suppression, gain control) blurs espeak's voice for the
        # offline recogniser: what was said must show through, not every word of it.
        heard = set(transcript[0]["text"].split())
        assert heard & {"what", "are", "your", "opening", "hours", "saturday"}, transcript
        assert done["text"]
        assert played["played_ms"] > 1000, "the browser really played the reply"
        # Replies play through a loopback peer connection, where Chrome's echo canceller sees them.
        assert _events(frames, "sent", "session.start")[0]["echo_cancellation"] == "loopback"
        bubbles = page.locator("aura-voice-widget >> .msg").all_inner_texts()
        assert transcript[0]["text"] in bubbles
        assert done["text"] in bubbles
        hearing = next(at for state, at in states if state == "hearing")
        thinking = next(at for state, at in states if state == "thinking" and at > hearing)
        speaking = next(at for state, at in states if state == "speaking" and at > thinking)
        (DOCS.parent / "widget-latency.json").write_text(
            json.dumps(
                {
                    "last_word_to_first_played_sample_ms": round(speaking - thinking + 600, 1),
                    "method": "speech.stopped → first reply chunk handed to the playback worklet, plus the "
                    "600 ms end-of-turn silence before speech.stopped; offline PocketSphinx speech-to-text, "
                    "simulated chat (80 ms first token) and speech (40 ms first byte)",
                }
            )
        )

        page.fill("aura-voice-widget >> input", "Do you deliver?")
        page.press("aura-voice-widget >> input", "Enter")
        typed = _wait(
            lambda: [e for e in _events(frames, "received", "transcript.final") if e["input"] == "text"], page=page
        )
        assert typed[0]["text"] == "Do you deliver?"
        _wait(
            lambda: [e for e in _events(frames, "received", "response.done") if "deliver" in e["text"].lower()],
            page=page,
        )


def test_speaking_over_the_greeting_interrupts_it_and_only_heard_text_is_kept(daphne_server, alpha, tmp_path):
    # The greeting starts about a second after the click; the visitor talks over it.
    microphone = _fake_microphone(tmp_path, ("silence", 2.2), ("interrupt.wav", 0), ("silence", 30.0))
    with _host_site() as site, _browser(microphone) as page:
        _embedded(daphne_server, alpha, site)
        frames = _record_socket(page)
        told: list[dict] = []
        page.expose_function("auraTranscript", lambda detail: told.append(detail))
        page.goto(site.origin)
        page.wait_for_function("window.AuraVoice && window.AuraVoice.shadowRoot")
        page.evaluate("AuraVoice.addEventListener('aura:transcript', e => auraTranscript(e.detail))")
        page.click("aura-voice-widget >> .launcher")
        interrupted = _wait(lambda: _events(frames, "received", "response.interrupted"), timeout=40, page=page)[0]
        played = _wait(
            lambda: [
                e for e in _events(frames, "sent", "response.played") if e["response_id"] == interrupted["response_id"]
            ],
            page=page,
        )[0]
        page.wait_for_timeout(800)
        created = _events(frames, "received", "session.created")[0]
        after = frames[frames.index(("received", interrupted)) :]

        assert [f for d, f in after if d == "received" and f == interrupted["response_id"]] == []
        assert interrupted["reason"] == "barge_in"
        assert 0 < played["played_ms"] < 4000

        def stored():
            with tenant_context(alpha.organization):
                return Turn.objects.filter(
                    conversation_id=created["conversation_id"], index=0, played_ms=played["played_ms"]
                ).first()

        turn = _wait(stored, timeout=10)
        assert turn.interrupted
        assert turn.heard_text != turn.text
        bubble = page.locator("aura-voice-widget >> .msg.assistant").first
        _wait(lambda: bubble.inner_text() == turn.heard_text, timeout=5, page=page)  # shows only what was heard
        # the page is told the greeting's words as heard (the last telling wins: the client's report)
        greeting = [t for t in told if t["role"] == "assistant" and t["response_id"] == interrupted["response_id"]]
        assert greeting and greeting[-1] == {
            "role": "assistant",
            "text": turn.heard_text,
            "response_id": interrupted["response_id"],
            "status": "interrupted",
        }
        _screenshot(page, "widget-interrupted")


def test_an_origin_that_is_not_allowed_sees_a_clear_message(daphne_server, alpha, tmp_path):
    microphone = _fake_microphone(tmp_path, ("silence", 5.0))
    with _host_site() as site, _browser(microphone) as page:
        _embedded(daphne_server, alpha, site, allowed=False)
        page.add_init_script(COUNT_MICROPHONE_REQUESTS)
        page.goto(site.origin)
        page.click("aura-voice-widget >> .launcher")
        error = page.locator("aura-voice-widget >> .error")
        error.wait_for(state="visible", timeout=15000)
        _screenshot(page, "widget-origin-not-allowed")
        assert "not enabled for this website" in error.inner_text()
        # Said before the microphone is asked for; nothing is offered that cannot work.
        assert page.evaluate("window.microphoneRequests") == 0
        for control in ("input", ".send", ".mute", ".end"):
            assert page.locator(f"aura-voice-widget >> {control}").is_disabled(), control
        assert _focused(page) == "button.close"
        _assert_accessible(page, "not allowed")


def test_a_denied_microphone_explains_itself_and_offers_typing(daphne_server, alpha):
    with _host_site() as site, _browser(None) as page:
        # A tenant's mid-tone accent: white text on it would read at 3.7:1, so the title is dark.
        _embedded(daphne_server, alpha, site, accent="#0891b2")
        frames = _record_socket(page)
        page.goto(site.origin)
        page.wait_for_function("window.AuraVoice && window.AuraVoice.shadowRoot")
        # By keyboard: the launcher opens the panel and moves focus into it; Esc closes it and returns focus.
        page.focus("aura-voice-widget >> .launcher")
        page.keyboard.press("Enter")
        assert _focused(page) == "input."
        notice = page.locator("aura-voice-widget >> .mic")
        _wait(lambda: "denied" in notice.inner_text(), page=page)
        _wait(lambda: _events(frames, "received", "session.created"), page=page)
        _assert_accessible(page, "microphone denied")
        page.keyboard.type("hello")
        page.keyboard.press("Enter")
        _wait(lambda: [e for e in _events(frames, "received", "response.done") if e["response_id"] == 2], page=page)
        page.wait_for_timeout(300)
        # The demo-mode notice came with the session: it does not replace the microphone's.
        assert page.locator("aura-voice-widget >> .demo").is_visible()
        assert "denied" in notice.inner_text() and notice.is_visible()
        _screenshot(page, "widget-microphone-denied")
        assert _events(frames, "sent", "session.start")[0]["text_only"] is True
        # The transcript scrolls by keyboard, and Esc goes back to the launcher.
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        assert _focused(page) == "div.transcript"
        page.keyboard.press("Escape")
        assert not page.locator("aura-voice-widget >> .panel").is_visible()
        assert _focused(page) == "button.launcher"
        page.keyboard.press("Enter")
        assert page.locator("aura-voice-widget >> .panel").is_visible()
        assert _focused(page) == "input."


def test_the_widget_keeps_the_visitor_the_server_minted_and_a_site_vouches_for_its_user(daphne_server, alpha):
    """Issue 21: the browser keeps the server's signed anonymous id (localStorage) and is the same visitor
    after a reload; a made-up visitor-id is not trusted; visitor-id with the site's hash is that user."""
    from tenants.actions import do_rotate_widget_identity_secret
    from voice.tokens import identity_hash

    with tenant_context(alpha.organization):  # earlier tests' conversations stay in the tenant's schema
        before = list(Conversation.objects.values_list("pk", flat=True))

    def conversation_visitors() -> list[str]:
        with tenant_context(alpha.organization):
            mine = Conversation.objects.exclude(pk__in=before).order_by("started_at")
            return list(mine.values_list("visitor_id", flat=True))

    def talk(page, frames) -> None:
        page.click("aura-voice-widget >> .launcher")
        _wait(lambda: _events(frames, "received", "session.created"), page=page)
        page.click("aura-voice-widget >> .end")
        _wait(lambda: _events(frames, "received", "session.ended"), page=page)

    with _host_site() as site, _browser(None) as page:
        _embedded(daphne_server, alpha, site)
        bodies: list[dict] = []
        page.on(
            "request",
            lambda r: r.method == "POST" and "/widget/session" in r.url and bodies.append(json.loads(r.post_data)),
        )
        for _ in range(2):  # the second visit: the same browser after a reload
            frames = _record_socket(page)
            page.goto(site.origin)
            talk(page, frames)
            assert "visitor_id" not in _events(frames, "sent", "session.start")[0]
        first, second = _wait(lambda: len(conversation_visitors()) == 2 and conversation_visitors())
        assert first.startswith("anon:") and second == first
        assert "visitor_token" not in bodies[0] and bodies[1]["visitor_token"]

        key = WidgetKey.objects.filter(organization=alpha.organization).order_by("pk").first()
        secret = do_rotate_widget_identity_secret(key)
        for extra in (
            'data-visitor-id="crm-4711"',
            f'data-visitor-id="crm-4711" data-visitor-hash="{identity_hash(secret, "crm-4711")}"',
        ):
            site.html = HOST_PAGE.format(platform=daphne_server.base_url, key=key.key, extra=extra).encode()
            frames = _record_socket(page)
            page.goto(site.origin)
            talk(page, frames)
        visitors = _wait(lambda: len(conversation_visitors()) == 4 and conversation_visitors())
        assert visitors[2] == first  # a made-up id: still the anonymous visitor this browser was
        assert visitors[3] == "crm-4711"  # vouched for by the site's server
