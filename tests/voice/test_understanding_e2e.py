"""Emotion and intent of visitor turns through whole sessions: a real daphne process, the simulated model.

The fast tier labels each turn on its way to the reply (the router sees the label); when it is unsure
and the assistant allows it, the chat model labels the turn in the background and its tokens are billed.
"""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context, tenant_context

from billing.models import UsageEvent
from conversations.models import Role, Turn
from tests.voice.sessions import assistant_settings, open_session
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _turns(tenant, conversation_id: str) -> list[Turn]:
    with tenant_context(tenant.organization):
        return list(Turn.objects.filter(conversation_id=conversation_id).order_by("index"))


async def _type(server, tenant, text: str) -> tuple[str, dict]:
    client, conversation_id, _ = await open_session(server, tenant, text_only=True)
    await client.send({"type": "input.text", "text": text})
    done = await client.wait_for("response.done", response_id=2)
    await client.send({"type": "session.end"})
    await client.wait_closed()
    return conversation_id, done


async def test_an_angry_visitor_is_labelled_and_routed_to_the_strong_model(daphne_server, alpha):
    settings = {
        "router_policy": "smart",
        "smart_strong_llm": "simulated:simulated-strong",
        "escalate_upset_visitors": True,
        "tools": ["business_hours"],
    }
    async with assistant_settings(alpha, **settings):
        conversation_id, _ = await _type(daphne_server, alpha, "This is absolutely unacceptable, you are useless!")

    turns = await eventually(lambda: len(_turns(alpha, conversation_id)) >= 3 and _turns(alpha, conversation_id))
    visitor, reply = turns[1], turns[2]
    assert (visitor.role, visitor.emotion, visitor.understood_by) == (Role.VISITOR, "angry", "rules")
    assert reply.model == "simulated-strong"
    assert "the visitor sounds angry" in reply.route["llm"]["reason"]


async def test_a_calm_visitor_stays_on_the_primary_model(daphne_server, alpha):
    settings = {"router_policy": "smart", "smart_strong_llm": "simulated:simulated-strong"}
    intents = [{"name": "menu_question", "examples": ["do you have vegan dishes", "what's on the menu"]}]
    async with assistant_settings(alpha, escalate_upset_visitors=True, intents=intents, tools=[], **settings):
        conversation_id, _ = await _type(daphne_server, alpha, "Do you have vegan dishes?")

    turns = await eventually(lambda: len(_turns(alpha, conversation_id)) >= 3 and _turns(alpha, conversation_id))
    assert (turns[1].emotion, turns[1].intent) == ("neutral", "menu_question")
    assert turns[2].model == "simulated-chat"


async def test_an_unsure_turn_is_labelled_by_the_chat_model_in_the_background_and_billed(daphne_server, alpha):
    intents = [{"name": "book_table", "examples": ["book a table", "a reservation for tonight"]}]
    async with assistant_settings(alpha, understand_with_model=True, intents=intents):
        # praise and complaint together: the rules are unsure (sarcasm)
        conversation_id, done = await _type(daphne_server, alpha, "Oh perfect, you lost my booking again")

    assert done["status"] == "completed"

    def labelled_by_model():
        turns = _turns(alpha, conversation_id)
        return len(turns) >= 2 and turns[1].understood_by == "model" and turns[1]

    visitor = await eventually(labelled_by_model)
    assert visitor, "the slow tier's labels reached the stored turn"
    assert visitor.emotion in ("frustrated", "angry", "positive", "neutral", "confused")
    with schema_context("public"):
        events = await eventually(
            lambda: list(UsageEvent.objects.filter(idempotency_key__startswith=f"model:understanding:{visitor.pk}:"))
        )
    assert {e.metric for e in events} == {"llm_input_tokens", "llm_output_tokens"}
    assert all(e.conversation_id is not None and str(e.conversation_id) == conversation_id for e in events)
