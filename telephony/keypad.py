"""Keys a caller presses (DTMF), gathered into one input: "1 2 3 #" is one answer, not four turns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

KEYS_GAP_S = 1.0  # a pause this long after a key ends the input; "#" ends it at once
MAX_KEYS = 32


def keys_in_words(keys: str) -> str:
    """What the model reads: "The caller pressed 2." / "The caller pressed 1, 2, 3 and #."."""
    names = list(keys)
    pressed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"The caller pressed {pressed} on the phone's keypad."


class Keypad:
    def __init__(self, deliver: Callable[[str], Awaitable[None]], *, gap_s: float = KEYS_GAP_S) -> None:
        self._deliver = deliver
        self._gap_s = gap_s
        self._keys = ""
        self._timer: asyncio.Task[None] | None = None

    async def press(self, key: str) -> None:
        self._keys += key
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if key == "#" or len(self._keys) >= MAX_KEYS:
            await self._flush()
        else:
            self._timer = asyncio.create_task(self._after_gap())

    async def _after_gap(self) -> None:
        await asyncio.sleep(self._gap_s)
        self._timer = None
        await self._flush()

    async def _flush(self) -> None:
        keys, self._keys = self._keys, ""
        if keys:
            await self._deliver(keys_in_words(keys))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
