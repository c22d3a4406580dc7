"""Routing policies: given the candidates, the request and the providers' health, the order in which
to try them and why. Pure and synchronous: this runs before every turn (goal: p95 ≤ 200 µs)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from voice.providers.base import ChatMessage, ToolSpec
from voice.router.candidates import Candidate
from voice.router.catalog import chat_price
from voice.router.health import ProviderHealth
from voice.text.emotion import UPSET

FIXED, FALLBACK, CHEAPEST, FASTEST, SMART = "fixed", "fallback", "cheapest", "fastest", "smart"
EXPECTED_OUTPUT_TOKENS = 120  # a spoken reply: a few sentences


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a policy may look at: a rough size of the request, and how demanding it looks."""

    input_tokens: int
    last_user_words: int
    tools_offered: int
    follows_tool_call: bool
    emotion: str = ""  # the visitor's last message's (voice.understanding), "" when unknown

    @classmethod
    def of(cls, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> RouteRequest:
        chars = 0
        for message in messages:
            chars += len(message.content)
        last_user = next((m for m in reversed(messages) if m.role == "user"), None)
        follows_tool = bool(messages) and messages[-1].role == "tool"
        return cls(
            input_tokens=chars // 4 + 4 * len(messages),  # ~4 characters a token, plus per-message framing
            last_user_words=len(last_user.content.split()) if last_user else 0,
            tools_offered=len(tools),
            follows_tool_call=follows_tool,
            emotion=last_user.emotion if last_user else "",
        )


@dataclass(frozen=True, slots=True)
class SmartRules:
    """The smart policy's rules, as the tenant reads them in the admin."""

    strong: Candidate | None
    long_words: int = 25
    many_tools: int = 3
    upset_to_strong: bool = False  # a frustrated or angry visitor gets the strong model

    def demanding_because(self, request: RouteRequest) -> str:
        if self.upset_to_strong and request.emotion in UPSET:
            return f"the visitor sounds {request.emotion}"
        if request.last_user_words > self.long_words:
            return f"the visitor's message has {request.last_user_words} words (more than {self.long_words})"
        if request.tools_offered >= self.many_tools:
            return f"{request.tools_offered} tools are offered (at least {self.many_tools})"
        if request.follows_tool_call:
            return "the turn continues after a tool call"
        return ""

    def describe(self, fast: Candidate) -> list[str]:
        strong = self.strong.key if self.strong else "(no strong model set: every turn goes to the primary)"
        upset = "when the visitor sounds frustrated or angry, " if self.upset_to_strong else ""
        return [
            f"A turn goes to the strong model {strong} {upset}when the visitor's message is longer than "
            f"{self.long_words} words, when {self.many_tools} or more tools are offered, or when it "
            "continues after a tool call.",
            f"Every other turn goes to the primary model {fast.key}.",
            "If the chosen model is unavailable, the other one and then the fallbacks are tried.",
        ]


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[Candidate, ...]  # candidates to try, healthy ones only, best first
    skipped: tuple[tuple[Candidate, str], ...]  # left out, with why
    reason: str
    first_choice: Candidate | None = None  # what the policy wanted before health: served by another = a failover


def plan(
    policy: str,
    candidates: Sequence[Candidate],
    request: RouteRequest,
    health: ProviderHealth,
    *,
    smart: SmartRules | None = None,
    now: float | None = None,
) -> Plan:
    """``candidates[0]`` is the primary; the rest are fallbacks in the tenant's order."""
    now = time.time() if now is None else now
    if policy == SMART and smart is not None and smart.strong is not None:
        candidates = _smart_order(candidates, request, smart)
    elif policy == FIXED:
        candidates = candidates[:1]
    healthy: list[Candidate] = []
    skipped: list[tuple[Candidate, str]] = []
    for candidate in candidates:
        if health.state(candidate, now) == "open":
            skipped.append((candidate, "circuit open"))
        else:
            healthy.append(candidate)
    reason = _reason(policy, candidates, healthy, request, health, smart)
    first_choice = candidates[0] if candidates else None
    if policy == CHEAPEST:
        healthy.sort(key=lambda c: chat_price(c).cost(request.input_tokens, EXPECTED_OUTPUT_TOKENS))
        reason = _cheapest_reason(healthy, request) if healthy else reason
    elif policy == FASTEST:
        healthy.sort(key=lambda c: _expected_first_token_ms(c, health))
        reason = _fastest_reason(healthy, health) if healthy else reason
    if policy in (CHEAPEST, FASTEST):  # these rank only the healthy: their first choice is healthy
        first_choice = healthy[0] if healthy else None
    return Plan(order=tuple(healthy), skipped=tuple(skipped), reason=reason, first_choice=first_choice)


def _smart_order(candidates: Sequence[Candidate], request: RouteRequest, smart: SmartRules) -> list[Candidate]:
    assert smart.strong is not None
    fast, rest = candidates[0], [c for c in candidates[1:] if c != smart.strong]
    if smart.demanding_because(request):
        return [smart.strong, fast, *rest]
    return [fast, smart.strong, *rest]


def _reason(
    policy: str,
    candidates: Sequence[Candidate],
    healthy: Sequence[Candidate],
    request: RouteRequest,
    health: ProviderHealth,
    smart: SmartRules | None,
) -> str:
    if not healthy:
        return "every candidate's circuit is open"
    first = healthy[0]
    detour = "" if first == candidates[0] else f"; {candidates[0].key} skipped (circuit open)"
    if policy == SMART and smart is not None and smart.strong is not None:
        why = smart.demanding_because(request)
        verdict = f"demanding turn: {why}" if why else "simple turn"
        return f"smart: {verdict}{detour}"
    if policy == FIXED:
        return "fixed: the primary model"
    return f"{policy}: {'primary' if not detour else first.key}{detour}"


def _cheapest_reason(ordered: Sequence[Candidate], request: RouteRequest) -> str:
    cost = chat_price(ordered[0]).cost(request.input_tokens, EXPECTED_OUTPUT_TOKENS)
    shown = "unknown price" if cost == float("inf") else f"~${cost:.6f} for ~{request.input_tokens} tokens in"
    return f"cheapest healthy: {ordered[0].key} ({shown})"


def _expected_first_token_ms(candidate: Candidate, health: ProviderHealth) -> float:
    measured = health.first_token_ms(candidate)
    return measured if measured is not None else chat_price(candidate).nominal_first_token_ms


def _fastest_reason(ordered: Sequence[Candidate], health: ProviderHealth) -> str:
    first = ordered[0]
    measured = health.first_token_ms(first)
    basis = f"measured {measured:.0f} ms" if measured is not None else "nominal, not measured yet"
    return f"fastest healthy: {first.key} (time to first token {basis})"
