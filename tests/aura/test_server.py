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

    from autobahn.websocket import protocol

    import aura.server

    before_policy, before_masker = asyncio.get_event_loop_policy(), protocol.create_xor_masker
    try:
        aura.server.install()
        assert protocol.create_xor_masker is aura.server.create_xor_masker
        assert type(asyncio.get_event_loop_policy()).__module__.startswith("uvloop")
    finally:
        asyncio.set_event_loop_policy(before_policy)
        protocol.create_xor_masker = before_masker
