"""What a new deployment starts with: the providers' published list prices and three plans.

Staff edit both in the platform admin; ``do_seed_catalog`` only adds what is missing, never
overwrites an edit. Prices are US dollars, as published when this was written (docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from billing.list_prices import CHAT_LIST_PRICES
from billing.models import CapKind, Metric

PRICES_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)
PER_MILLION = 1_000_000
PER_MINUTE = 60  # prices per minute of audio, quantities in seconds


@dataclass(frozen=True, slots=True)
class SeedPrice:
    provider: str
    model: str
    metric: str
    price: Decimal
    per_quantity: int
    note: str


def _chat_prices() -> list[SeedPrice]:
    prices = []
    for key, (input_per_mtok, output_per_mtok) in CHAT_LIST_PRICES.items():
        provider, model = key.split(":", 1)
        note = "list price per 1M tokens"
        prices.append(SeedPrice(provider, model, Metric.LLM_INPUT_TOKENS, _d(input_per_mtok), PER_MILLION, note))
        prices.append(SeedPrice(provider, model, Metric.LLM_OUTPUT_TOKENS, _d(output_per_mtok), PER_MILLION, note))
    return prices


def _d(value: float) -> Decimal:
    return Decimal(str(value))


SEED_PRICES: list[SeedPrice] = [
    *_chat_prices(),
    SeedPrice("openai", "gpt-4o-mini-transcribe", Metric.STT_SECONDS, Decimal("0.003"), PER_MINUTE, "per minute"),
    SeedPrice("openai", "gpt-4o-transcribe", Metric.STT_SECONDS, Decimal("0.006"), PER_MINUTE, "per minute"),
    SeedPrice("openai", "whisper-1", Metric.STT_SECONDS, Decimal("0.006"), PER_MINUTE, "per minute"),
    SeedPrice("openai", "tts-1", Metric.TTS_CHARACTERS, Decimal("15"), PER_MILLION, "per 1M characters"),
    SeedPrice("openai", "tts-1-hd", Metric.TTS_CHARACTERS, Decimal("30"), PER_MILLION, "per 1M characters"),
    SeedPrice(
        "openai",
        "gpt-4o-mini-tts",
        Metric.TTS_CHARACTERS,
        Decimal("15"),
        PER_MILLION,
        "billed per token; OpenAI estimates $0.015 a minute, about 1,000 characters",
    ),
    # Phone minutes (telephony): Twilio's US list prices for a local number, plus Media Streams ($0.004/min).
    SeedPrice(
        "twilio", "inbound", Metric.PHONE_INBOUND_SECONDS, Decimal("0.0125"), PER_MINUTE, "per minute: 0.0085 + streams"
    ),
    SeedPrice(
        "twilio", "outbound", Metric.PHONE_OUTBOUND_SECONDS, Decimal("0.018"), PER_MINUTE, "per minute: 0.014 + streams"
    ),
    # Simulated and on-machine providers cost nothing; a self-hosted server's cost is the deployment's.
    *[
        SeedPrice(provider, "*", metric, Decimal(0), 1, "no provider charge")
        for provider in ("simulated", "local")
        for metric in (
            Metric.STT_SECONDS,
            Metric.LLM_INPUT_TOKENS,
            Metric.LLM_OUTPUT_TOKENS,
            Metric.TTS_CHARACTERS,
        )
    ],
]


@dataclass(frozen=True, slots=True)
class SeedPlan:
    slug: str
    name: str
    monthly_fee: Decimal
    included_minutes: int
    overage_per_minute: Decimal
    included_text_tokens: int
    overage_per_1k_tokens: Decimal
    max_concurrent_sessions: int
    cap: str
    phone_inbound_per_minute: Decimal = Decimal(0)
    phone_outbound_per_minute: Decimal = Decimal(0)
    self_service: bool = False  # a tenant may switch to it without staff approval


SEED_PLANS: list[SeedPlan] = [
    SeedPlan("trial", "Trial", Decimal("0"), 60, Decimal("0"), 200_000, Decimal("0"), 2, CapKind.HARD),
    SeedPlan(
        "starter",
        "Starter",
        Decimal("49"),
        500,
        Decimal("0.12"),
        2_000_000,
        Decimal("0.004"),
        5,
        CapKind.SOFT,
        phone_inbound_per_minute=Decimal("0.03"),
        phone_outbound_per_minute=Decimal("0.04"),
        self_service=True,
    ),
    SeedPlan(
        "growth",
        "Growth",
        Decimal("299"),
        4000,
        Decimal("0.09"),
        20_000_000,
        Decimal("0.003"),
        25,
        CapKind.SOFT,
        phone_inbound_per_minute=Decimal("0.025"),
        phone_outbound_per_minute=Decimal("0.035"),
    ),
]
