"""``python -m aura.server …``: daphne, on a uvloop event loop, with a cheaper WebSocket unmasker.

Every audio frame of every session passes through daphne's event loop (50 a second per session),
so its per-message cost decides how many sessions one process holds in real time (docs/benchmarks.md):

* uvloop's loop (libuv, in C) schedules callbacks and timers at a fraction of the standard loop's
  cost. The policy must be in place before daphne creates its loop at import, hence this entry point.
* Browsers mask every frame they send. autobahn unmasks each with a CFFI object it allocates per
  frame, which cost more than the unmasking itself; one big-integer XOR does a 640-byte frame in
  about a microsecond. ``IntXorMasker`` keeps autobahn's masker interface (pointer, reset, process
  over a frame that arrives in pieces) and tests/aura/test_server.py checks it against autobahn's.
* autobahn logs every message it sends or receives at debug level, and builds the arguments first
  even when debug is off: colouring a type name and two values with click took 8 % of the loop's
  busy time (py-spy, 200 sessions). Its two WebSocket modules get plain, uncoloured versions.

The arguments are daphne's own.
"""

from __future__ import annotations

import asyncio


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
        key = self._mask[shift:] + self._mask[:shift]  # where a piece starts inside the key
        self._pointer += size
        stream = (key * (size // 4 + 1))[:size]
        return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(size, "little")


def create_xor_masker(mask: bytes, length: int | None = None) -> IntXorMasker:
    return IntXorMasker(mask)


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


def main() -> None:
    install()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
