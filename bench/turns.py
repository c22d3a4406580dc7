"""Storing a turn as a live voice session does: CPU per stored turn on the calling thread.

    .venv/bin/python -m bench.turns --json

A voice server stores every turn of every session from one database thread, and while that thread
runs Python it holds the GIL the event loop needs (docs/benchmarks.md, voice sessions). This times
``conversations.actions.do_record_turn`` (the turn, its usage events, one transaction) the way the
session's recorder calls it (``run_in_tenant`` from the event loop: a hop to the database thread,
in the tenant's schema), alternating a visitor's spoken turn and an assistant's reply. CPU is this
process's, both threads (PostgreSQL's is not counted); the figure is the best of five rounds,
because the machine's speed varies between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bench.common import fresh_platform, summary

if TYPE_CHECKING:
    from conversations.actions import TurnRecord


def turn_record(index: int) -> TurnRecord:
    from conversations.actions import TurnRecord

    now = datetime.now(UTC)
    if index % 2:
        return TurnRecord(
            role="visitor",
            text="What time do you open on Sunday?",
            started_at=now,
            ended_at=now,
            input_mode="voice",
            audio_ms=1800,
            endpoint_delay_ms=612.0,
            stt_ms=150.0,
            provider="simulated",
            model="simulated-stt",
        )
    return TurnRecord(
        role="assistant",
        text="We open at ten on Sundays. Would you like to book a table?",
        heard_text="We open at ten on Sundays.",
        started_at=now,
        ended_at=now,
        llm_first_token_ms=300.0,
        tts_first_byte_ms=120.0,
        first_audio_ms=640.0,
        audio_ms=3400,
        input_tokens=420,
        output_tokens=16,
        tts_characters=58,
        provider="simulated",
        model="simulated-chat",
        route={"llm": {"chosen": "simulated:simulated-chat"}, "tts": {"chosen": "simulated:simulated-tts"}},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=200, help="turns per round (five rounds)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    organization = fresh_platform("turns")

    from django_tenants.utils import tenant_context

    from conversations.actions import do_record_turn, do_start_conversation
    from tenants.tenancy import run_in_tenant
    from voice.models import Assistant

    with tenant_context(organization):
        assistant = Assistant.objects.get()
        conversation_id = str(uuid.uuid4())
        do_start_conversation(
            conversation_id=conversation_id, assistant_id=assistant.pk, visitor_id="bench", channel="voice", origin=""
        )

    async def store(count: int) -> None:
        for index in range(count):
            await run_in_tenant(
                organization, do_record_turn, conversation_id=conversation_id, record=turn_record(index)
            )

    asyncio.run(store(50))  # warm caches (prices, statements) and the connection
    cpu_ms, wall_ms = [], []
    for _ in range(5):
        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(store(args.turns))
        cpu_ms.append((time.process_time() - cpu) * 1000 / args.turns)
        wall_ms.append((time.perf_counter() - wall) * 1000 / args.turns)
    result = {
        "turns": 5 * args.turns,
        "cpu_ms_per_turn_best_round": round(min(cpu_ms), 3),
        "cpu_ms_per_turn_by_round": summary(cpu_ms, 3),
        "wall_ms_per_turn_best_round": round(min(wall_ms), 3),
    }
    print(
        f"CPU per stored turn: {result['cpu_ms_per_turn_best_round']} ms (best of 5 rounds); "
        f"wall {result['wall_ms_per_turn_best_round']} ms"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
