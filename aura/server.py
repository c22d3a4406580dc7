"""``python -m aura.server …``: daphne, on a uvloop event loop, with a leaner path for client frames.

Every audio frame of every session passes through daphne's event loop (25 a second per session),
so its per-message cost decides how many sessions one process holds in real time (docs/benchmarks.md):

* uvloop's loop (libuv, in C) schedules callbacks and timers at a fraction of the standard loop's
  cost. The policy must be in place before daphne creates its loop at import, hence this entry point.
* Browsers mask every frame they send. autobahn unmasks each with a CFFI object it allocates per
  frame, which cost more than the unmasking itself; one big-integer XOR does a 640-byte frame in
  about a microsecond. ``IntXorMasker`` keeps autobahn's masker interface (pointer, reset, process
  over a frame that arrives in pieces) and tests/aura/test_server.py checks it against autobahn's.
* Most client frames are the simplest kind: one whole masked binary (or text) message, already
  in the buffer. ``read_whole_frame`` delivers those straight to daphne, skipping autobahn's
  general frame machinery (per frame: a header object, message and frame begin/data/end hooks,
  an incremental UTF-8 validator); every other case (fragments, control frames, partial frames,
  compression, anything invalid, sizes over the limits) goes to autobahn's own parser untouched,
  which then enforces the protocol exactly as before.
* autobahn logs every message it sends or receives at debug level, and builds the arguments first
  even when debug is off: colouring a type name and two values with click took 8 % of the loop's
  busy time (py-spy, 200 sessions). Its two WebSocket modules get plain, uncoloured versions.

The arguments are daphne's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol


def unmask(mask: bytes, payload: bytes) -> bytes:
    """A whole frame's payload XORed with its 4-byte key, as one big-integer operation."""
    size = len(payload)
    stream = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(size, "little")


class IntXorMasker:
    """RFC 6455 masking: byte i of a frame's payload is XORed with byte (i mod 4) of its 4-byte key."""

    __slots__ = ("_mask", "_pointer")

    def __init__(self, mask: bytes) -> None:
        self._mask = bytes(mask)
        self._pointer = 0

    def pointer(self) -> int:
        return self._pointer

    def reset(self) -> None:
        self._pointer = 0

    def process(self, data: bytes) -> bytes:
        size = len(data)
        if not size:
            return b""
        shift = self._pointer & 3
        self._pointer += size
        return unmask(self._mask[shift:] + self._mask[:shift], data)  # the key rotated to where this piece starts


def create_xor_masker(mask: bytes, length: int | None = None) -> IntXorMasker:
    return IntXorMasker(mask)


_FIN_TEXT, _FIN_BINARY = 0x81, 0x82  # the first header byte of a whole text / binary frame
_OPEN = AutobahnProtocol.STATE_OPEN


def read_whole_frame(protocol: Any) -> bool:
    """autobahn's ``processData`` for a server protocol, with a shortcut for a whole, masked,
    unfragmented, uncompressed data frame of at most 65,535 bytes that is already buffered.
    Returns what ``processData`` returns: whether buffered data is left to process."""
    data = protocol.data
    if (
        len(data) >= 6
        and data[0] in (_FIN_TEXT, _FIN_BINARY)  # FIN, no RSV bits, text or binary
        and data[1] & 0x80  # masked, as every client frame must be
        and protocol.state == _OPEN
        and protocol.current_frame is None
        and not protocol.inside_message
        and protocol._perMessageCompress is None  # noqa: SLF001 - autobahn's own state
        and not protocol.logFrames
        and not protocol.trackedTimings
    ):
        length, start = data[1] & 0x7F, 6
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 8
            if length < 126:  # not the minimal encoding: a violation, autobahn fails the connection
                length = -1
        elif length == 127:  # over 64 KiB: autobahn's
            length = -1
        end = start + length
        if (
            length >= 0
            and len(data) >= end
            and not 0 < protocol.maxFramePayloadSize < length
            and not 0 < protocol.maxMessagePayloadSize < length
        ):
            payload = unmask(data[start - 4 : start], data[start:end])
            binary = data[0] == _FIN_BINARY
            if binary or _valid_utf8(payload):
                protocol.data = data[end:]
                stats = protocol.trafficStats
                stats.incomingOctetsWebSocketLevel += length
                stats.incomingOctetsAppLevel += length
                stats.incomingWebSocketFrames += 1
                stats.incomingWebSocketMessages += 1
                if protocol.autoPingTimeoutCall and getattr(protocol, "autoPingRestartOnAnyTraffic", True):
                    protocol._cancelAutoPingTimeoutCall()  # noqa: SLF001 - as autobahn does on a data frame
                protocol._onMessage(payload, binary)  # noqa: SLF001 - autobahn's delivery to daphne
                return len(protocol.data) > 0
    return AutobahnProtocol.processData(protocol)


def _valid_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False  # autobahn's parser fails the connection with 1007
    return True


def plain_type(obj: object) -> str:
    """autobahn's ``hltype`` without terminal colours: ``<module.Qualified.name>``."""
    return f"<{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}>"


def plain_value(value: object, color: str = "", bold: bool = True) -> str:
    """autobahn's ``hlval`` without terminal colours."""
    return f"{value}"


def install() -> None:
    import uvloop
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    protocol.create_xor_masker = create_xor_masker
    for module in (protocol, twisted_websocket):
        module.hltype, module.hlval = plain_type, plain_value
    from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocket

    DaphneWebSocket.processData = read_whole_frame


def main() -> None:
    install()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
