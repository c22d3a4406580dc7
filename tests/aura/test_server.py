"""The server entry point's WebSocket unmasker gives autobahn's results, whatever the frame's pieces."""

from __future__ import annotations

import random

import pytest
from autobahn.websocket.xormasker import create_xor_masker as autobahn_masker

from aura.server import IntXorMasker


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 127, 128, 640, 1923, 65536])
def test_unmasking_matches_autobahn_for_whole_frames_and_pieces(size):
    rng = random.Random(size)
    for _ in range(20):
        mask = bytes(rng.randrange(256) for _ in range(4))
        payload = bytes(rng.randrange(256) for _ in range(size))
        expected = autobahn_masker(mask, size).process(payload)
        assert IntXorMasker(mask).process(payload) == expected
        masker, pieces, offset = IntXorMasker(mask), [], 0
        while offset < size:  # a frame that arrives over several TCP reads
            step = rng.randrange(1, 9)
            pieces.append(masker.process(payload[offset : offset + step]))
            offset += step
        assert b"".join(pieces) == expected and masker.pointer() == size
        masker.reset()
        assert masker.pointer() == 0 and masker.process(payload) == expected


def test_installing_switches_autobahn_and_the_event_loop():
    import asyncio

    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol

    import aura.server

    before_policy, before_masker = asyncio.get_event_loop_policy(), protocol.create_xor_masker
    before_log_helpers = [(module, module.hltype, module.hlval) for module in (protocol, twisted_websocket)]
    try:
        aura.server.install()
        assert protocol.create_xor_masker is aura.server.create_xor_masker
        assert type(asyncio.get_event_loop_policy()).__module__.startswith("uvloop")
        for module in (protocol, twisted_websocket):
            assert module.hltype is aura.server.plain_type and module.hlval is aura.server.plain_value
    finally:
        asyncio.set_event_loop_policy(before_policy)
        protocol.create_xor_masker = before_masker
        for module, hltype, hlval in before_log_helpers:
            module.hltype, module.hlval = hltype, hlval


def test_plain_log_helpers_say_what_autobahns_say_without_colours():
    import click
    from autobahn.util import hltype, hlval

    from aura.server import plain_type, plain_value

    assert click.unstyle(hltype(IntXorMasker.process)) == plain_type(IntXorMasker.process)
    assert plain_type(IntXorMasker.process) == "<aura.server.IntXorMasker.process>"
    assert click.unstyle(hlval(1234, color="green")) == plain_value(1234, color="green") == "1234"


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"\x11\x22\x33\x44", rsv: int = 0) -> bytes:
    """A client frame as a browser sends it (masked), built independently of autobahn and aura."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload)
    if size < 126:
        header = bytes([first, 0x80 | size])
    elif size < 65536:
        header = bytes([first, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([first, 0x80 | 127]) + size.to_bytes(8, "big")
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def _server_protocol(fast: bool):
    import txaio

    txaio.use_twisted()
    from autobahn.testutil import FakeTransport
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

    from aura.server import read_whole_frame

    class Recording(WebSocketServerProtocol):
        if fast:
            processData = read_whole_frame  # noqa: N815 - autobahn's method name

        def onMessage(self, payload, isBinary):  # noqa: N802, N803 - autobahn's callback
            self.messages.append((bytes(payload), isBinary))

        def onPing(self, payload):  # noqa: N802
            self.messages.append(("ping", bytes(payload)))

    factory = WebSocketServerFactory()
    factory.setProtocolOptions(maxFramePayloadSize=70000, maxMessagePayloadSize=70000)
    protocol = Recording()
    protocol.messages = []
    protocol.factory = factory
    protocol.transport = FakeTransport()
    protocol._connectionMade()
    protocol.state = protocol.STATE_OPEN  # as the opening handshake leaves it
    protocol.inside_message, protocol.current_frame = False, None
    protocol.websocket_version = 18
    return protocol


def _stop_timers(protocol) -> None:
    for name in ("autoPingPendingCall", "autoPingTimeoutCall", "openHandshakeTimeoutCall", "closeHandshakeTimeoutCall"):
        call = getattr(protocol, name, None)
        if call is not None:
            call.cancel()


STREAMS = {
    "binary frames": [_frame(2, bytes(range(256)) * 5), _frame(2, b""), _frame(2, b"x" * 125), _frame(2, b"y" * 126)],
    "text frames": [_frame(1, '{"type":"input.text","text":"héllo"}'.encode()), _frame(1, b"")],
    "a fragmented message": [_frame(2, b"abc", fin=False), _frame(0, b"def", fin=False), _frame(0, b"ghi")],
    "a ping between data frames": [_frame(2, b"one"), _frame(9, b"are you there"), _frame(2, b"two")],
    "a frame over 64 KiB": [_frame(2, b"z" * 65537), _frame(2, b"after")],
    "a frame over the size limit": [_frame(2, b"z" * 70001)],
    "invalid UTF-8 in a text frame": [_frame(1, b"\xff\xfe not text"), _frame(2, b"never delivered")],
    "an RSV bit without an extension": [_frame(2, b"payload", rsv=4), _frame(2, b"never delivered")],
    "an unmasked client frame": [bytes([0x82, 3]) + b"abc"],
    "a reserved opcode": [_frame(3, b"what")],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_whole_frame_shortcut_behaves_as_autobahn_however_the_bytes_arrive(name):
    stream = b"".join(STREAMS[name])
    rng = random.Random(name)
    for attempt in range(12):
        cuts = sorted(rng.sample(range(1, len(stream)), min(attempt, len(stream) - 1)))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        outcomes = []
        for fast in (False, True):
            protocol = _server_protocol(fast)
            for piece in pieces:
                protocol._dataReceived(piece)
            outcomes.append((protocol.messages, protocol.state, protocol.transport._written, protocol.failedByMe))
            _stop_timers(protocol)
        assert outcomes[1] == outcomes[0], f"{name}, cut at {cuts}"


def test_whole_frames_skip_autobahns_parser_and_the_rest_use_it(monkeypatch):
    from autobahn.websocket.protocol import WebSocketProtocol

    stock, calls = WebSocketProtocol.processData, []

    def counted(protocol):
        calls.append(1)
        return stock(protocol)

    monkeypatch.setattr(WebSocketProtocol, "processData", counted)
    protocol = _server_protocol(fast=True)
    protocol._dataReceived(b"".join(STREAMS["binary frames"] + STREAMS["text frames"]))
    assert len(protocol.messages) == 6 and calls == []
    protocol._dataReceived(b"".join(STREAMS["a fragmented message"]))
    assert protocol.messages[-1] == (b"abcdefghi", True) and len(calls) >= 3
    _stop_timers(protocol)
