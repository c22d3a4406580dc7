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
