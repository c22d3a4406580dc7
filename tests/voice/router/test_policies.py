"""Each routing policy's choice, from the same inputs the router sees before a turn."""

from __future__ import annotations

import re
import time

import pytest

from voice.providers.base import ChatMessage, ToolSpec
from voice.router.candidates import Candidate, chain, parse_candidate, parse_candidates
from voice.router.health import Health, ProviderHealth
from voice.router.policies import RouteRequest, SmartRules, plan

MINI = Candidate("openai", "gpt-4o-mini")
GPT4O = Candidate("openai", "gpt-4o")
GROK_MINI = Candidate("xai", "grok-3-mini")
GROK = Candidate("xai", "grok-3")
SELF_HOSTED = Candidate("openai_compatible", "llama-3.1-8b")


def _health(**entries: Health) -> ProviderHealth:
    health = ProviderHealth(failures_to_open=3, cooldown_s=30)
    health.entries = {key.replace("__", ":").replace("_", "-"): value for key, value in entries.items()}
    return health


def _open() -> Health:
    return Health(state="open", failures=3, opened_until=time.time() + 60)


def _request(text: str = "What time do you open?", tools: int = 0) -> RouteRequest:
    specs = [ToolSpec(name=f"t{i}", description="") for i in range(tools)]
    return RouteRequest.of([ChatMessage("system", "Be brief."), ChatMessage("user", text)], specs)


def test_fixed_uses_only_the_primary() -> None:
    decided = plan("fixed", [MINI, GROK_MINI], _request(), _health())
    assert decided.order == (MINI,)
    assert decided.reason == "fixed: the primary model"


def test_fixed_with_an_open_breaker_has_nothing_to_try() -> None:
    health = ProviderHealth(failures_to_open=3, cooldown_s=30, entries={MINI.key: _open()})
    decided = plan("fixed", [MINI, GROK_MINI], _request(), health)
    assert decided.order == ()
    assert decided.skipped == ((MINI, "circuit open"),)


def test_fallback_keeps_the_tenants_order_and_skips_open_breakers() -> None:
    assert plan("fallback", [MINI, GROK_MINI, GROK], _request(), _health()).order == (MINI, GROK_MINI, GROK)
    health = ProviderHealth(failures_to_open=3, cooldown_s=30, entries={MINI.key: _open()})
    decided = plan("fallback", [MINI, GROK_MINI, GROK], _request(), health)
    assert decided.order == (GROK_MINI, GROK)
    assert decided.reason == "fallback: xai:grok-3-mini; openai:gpt-4o-mini skipped (circuit open)"


def test_an_expired_open_breaker_is_half_open_and_may_be_tried() -> None:
    expired = Health(state="open", failures=3, opened_until=time.time() - 1)
    health = ProviderHealth(failures_to_open=3, cooldown_s=30, entries={MINI.key: expired})
    assert health.state(MINI) == "half_open"
    assert plan("fallback", [MINI, GROK_MINI], _request(), health).order == (MINI, GROK_MINI)


def test_cheapest_ranks_by_list_price_for_the_request() -> None:
    decided = plan("cheapest", [GPT4O, GROK, GROK_MINI, MINI], _request(), _health())
    # A short prompt and ~120 tokens out: grok-3-mini (0.30/0.50 per M) < gpt-4o-mini (0.15/0.60) < ...
    assert decided.order == (GROK_MINI, MINI, GPT4O, GROK)
    assert decided.reason.startswith("cheapest healthy: xai:grok-3-mini (~$0.0000")


def test_cheapest_prefers_output_price_when_the_prompt_is_short_and_input_price_when_long() -> None:
    # gpt-4o-mini: 0.15 in / 0.60 out; grok-3-mini: 0.30 in / 0.50 out. A short prompt costs mostly output.
    short = RouteRequest(input_tokens=10, last_user_words=3, tools_offered=0, follows_tool_call=False)
    long = RouteRequest(input_tokens=20_000, last_user_words=3, tools_offered=0, follows_tool_call=False)
    assert plan("cheapest", [MINI, GROK_MINI], short, _health()).order[0] == GROK_MINI
    assert plan("cheapest", [MINI, GROK_MINI], long, _health()).order[0] == MINI


def test_cheapest_puts_models_without_a_list_price_last_and_skips_open_ones() -> None:
    health = ProviderHealth(failures_to_open=3, cooldown_s=30, entries={MINI.key: _open()})
    decided = plan("cheapest", [SELF_HOSTED, MINI, GPT4O], _request(), health)
    assert decided.order == (GPT4O, SELF_HOSTED)


def test_fastest_uses_the_measured_average_and_the_nominal_speed_until_measured() -> None:
    health = ProviderHealth(
        failures_to_open=3,
        cooldown_s=30,
        entries={MINI.key: Health(first_token_ms=900.0), GROK_MINI.key: Health(first_token_ms=250.0)},
    )
    decided = plan("fastest", [MINI, GROK_MINI, GPT4O], _request(), health)
    assert decided.order == (GROK_MINI, GPT4O, MINI)  # gpt-4o unmeasured: nominal 550 ms
    assert decided.reason == "fastest healthy: xai:grok-3-mini (time to first token measured 250 ms)"


def test_smart_sends_simple_turns_to_the_primary_and_demanding_ones_to_the_strong_model() -> None:
    rules = SmartRules(strong=GPT4O, long_words=10, many_tools=2)
    candidates = [MINI, GPT4O, GROK_MINI]
    simple = plan("smart", candidates, _request("Are you open?"), _health(), smart=rules)
    assert simple.order == (MINI, GPT4O, GROK_MINI)
    assert simple.reason == "smart: simple turn"
    long_text = "I would like to know whether I can bring my dog and two children to dinner on Saturday night"
    demanding = plan("smart", candidates, _request(long_text), _health(), smart=rules)
    assert demanding.order == (GPT4O, MINI, GROK_MINI)
    assert "has 19 words (more than 10)" in demanding.reason
    tools = plan("smart", candidates, _request("Book it", tools=2), _health(), smart=rules)
    assert tools.order[0] == GPT4O and "2 tools are offered" in tools.reason
    after_tool = RouteRequest.of([ChatMessage("user", "Weather?"), ChatMessage("tool", "{}", tool_call_id="c1")])
    assert plan("smart", candidates, after_tool, _health(), smart=rules).order[0] == GPT4O


def test_smart_rules_read_in_words_name_the_models_and_thresholds() -> None:
    lines = SmartRules(strong=GPT4O, long_words=25, many_tools=3).describe(MINI)
    assert "openai:gpt-4o when the visitor's message is longer than 25 words" in lines[0]
    assert "primary model openai:gpt-4o-mini" in lines[1]


def test_candidates_parse_and_refuse_bad_references() -> None:
    assert parse_candidates(["openai:gpt-4o-mini", " xai:grok-3 "]) == [MINI, GROK]
    assert chain(MINI, [GROK, MINI, GROK]) == (MINI, GROK)
    for bad, message in (
        ("gpt-4o", 'is not "provider:model"'),
        ("acme:model", 'unknown provider "acme"'),
        ("openai:", "is not"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_candidate(bad)


def test_smart_sends_an_upset_visitor_to_the_strong_model_when_the_assistant_escalates() -> None:
    candidates = [MINI, GPT4O]
    angry = RouteRequest.of([ChatMessage("user", "This is unacceptable", emotion="angry")])
    calm = RouteRequest.of([ChatMessage("user", "This is fine", emotion="neutral")])
    escalating = SmartRules(strong=GPT4O, upset_to_strong=True)

    decided = plan("smart", candidates, angry, _health(), smart=escalating)
    assert decided.order == (GPT4O, MINI)
    assert decided.reason == "smart: demanding turn: the visitor sounds angry"
    assert plan("smart", candidates, calm, _health(), smart=escalating).order == (MINI, GPT4O)
    # without the setting, a short angry message is a simple turn
    assert plan("smart", candidates, angry, _health(), smart=SmartRules(strong=GPT4O)).order == (MINI, GPT4O)
    assert "frustrated or angry" in escalating.describe(MINI)[0]
