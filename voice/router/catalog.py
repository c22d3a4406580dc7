"""What the router knows about models: list prices and nominal speed, for the cheapest and fastest
policies before any time to first token has been measured.

Prices are the providers' published list prices in US dollars (per million tokens for chat). The
billing issue moves prices into the database with effective dates; the router only needs to rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.list_prices import CHAT_LIST_PRICES
from voice.router.candidates import Candidate


@dataclass(frozen=True, slots=True)
class ChatPrice:
    input_per_mtok: float
    output_per_mtok: float
    nominal_first_token_ms: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


# Nominal time to first token (ms) of each model with a list price (billing.list_prices), and the simulator's.
_NOMINAL_FIRST_TOKEN_MS: dict[str, float] = {
    "openai:gpt-4.1-nano": 350,
    "openai:gpt-4o-mini": 400,
    "openai:gpt-4.1-mini": 450,
    "openai:gpt-4.1": 600,
    "openai:gpt-4o": 550,
    "xai:grok-4-fast-non-reasoning": 350,
    "xai:grok-3-mini": 500,
    "xai:grok-3": 650,
    "xai:grok-4": 900,
}
CHAT_MODELS: dict[str, ChatPrice] = {"simulated:simulated-chat": ChatPrice(0.0, 0.0, 300)} | {
    key: ChatPrice(input_per_mtok, output_per_mtok, _NOMINAL_FIRST_TOKEN_MS[key])
    for key, (input_per_mtok, output_per_mtok) in CHAT_LIST_PRICES.items()
}
# A self-hosted or unlisted model has no list price: it ranks after every priced one.
UNKNOWN = ChatPrice(float("inf"), float("inf"), 1000)


def chat_price(candidate: Candidate) -> ChatPrice:
    if candidate.provider == "simulated":
        return CHAT_MODELS["simulated:simulated-chat"]
    return CHAT_MODELS.get(candidate.key, UNKNOWN)
