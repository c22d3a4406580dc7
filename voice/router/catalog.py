"""What the router knows about models: list prices and nominal speed, for the cheapest and fastest
policies before any time to first token has been measured.

Prices are the providers' published list prices in US dollars (per million tokens for chat). The
billing issue moves prices into the database with effective dates; the router only needs to rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice.router.candidates import Candidate


@dataclass(frozen=True, slots=True)
class ChatPrice:
    input_per_mtok: float
    output_per_mtok: float
    nominal_first_token_ms: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


CHAT_MODELS: dict[str, ChatPrice] = {
    "simulated:simulated-chat": ChatPrice(0.0, 0.0, 300),
    "openai:gpt-4.1-nano": ChatPrice(0.10, 0.40, 350),
    "openai:gpt-4o-mini": ChatPrice(0.15, 0.60, 400),
    "openai:gpt-4.1-mini": ChatPrice(0.40, 1.60, 450),
    "openai:gpt-4.1": ChatPrice(2.00, 8.00, 600),
    "openai:gpt-4o": ChatPrice(2.50, 10.00, 550),
    "xai:grok-4-fast-non-reasoning": ChatPrice(0.20, 0.50, 350),
    "xai:grok-3-mini": ChatPrice(0.30, 0.50, 500),
    "xai:grok-3": ChatPrice(3.00, 15.00, 650),
    "xai:grok-4": ChatPrice(3.00, 15.00, 900),
}
# A self-hosted or unlisted model has no list price: it ranks after every priced one.
UNKNOWN = ChatPrice(float("inf"), float("inf"), 1000)


def chat_price(candidate: Candidate) -> ChatPrice:
    if candidate.provider == "simulated":
        return CHAT_MODELS["simulated:simulated-chat"]
    return CHAT_MODELS.get(candidate.key, UNKNOWN)
