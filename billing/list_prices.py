"""The chat models' published list prices, US dollars per million tokens (input, output), as published
when this was written (docs/billing.md). Billing seeds its price table with them (``billing.catalog``);
the router ranks models by them before any price is in the database (``voice.router.catalog``). Pure."""

from __future__ import annotations

CHAT_LIST_PRICES: dict[str, tuple[float, float]] = {
    "openai:gpt-4.1-nano": (0.10, 0.40),
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4.1-mini": (0.40, 1.60),
    "openai:gpt-4.1": (2.00, 8.00),
    "openai:gpt-4o": (2.50, 10.00),
    "xai:grok-4-fast-non-reasoning": (0.20, 0.50),
    "xai:grok-3-mini": (0.30, 0.50),
    "xai:grok-3": (3.00, 15.00),
    "xai:grok-4": (3.00, 15.00),
}
