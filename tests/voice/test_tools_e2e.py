"""Tools and memory through whole turns: a real daphne process, a real WebSocket, the simulated model.

The simulated model picks tools by keywords (voice.providers.simulated.simulated_tool_call) and
speaks their results, so each test drives a real tool through the real session and pipeline.
Spoken turns (hours, hand-off, goodbye, knowledge, forget) go through PocketSphinx on the server;
an email address and the memory and summary set-ups are typed on the same session.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django_tenants.utils import tenant_context

from conversations.models import Conversation, Handoff, Lead, ToolCall, Turn, VisitorProfile
from core.signing import verify_signature
from tests.voice.client import VoiceClient, read_wav, silence
from tests.voice.sessions import assistant_settings, open_session
from tests.waiting import eventually
from voice.models import Assistant, HttpTool

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def _say(client: VoiceClient, fixture: str) -> None:
    """Speak a fixture into the session in real time (PocketSphinx transcribes it on the server)."""
    speech, rate = read_wav(fixture)
    await client.stream(speech + silence(300), rate)


def _in_tenant(tenant, fn):
    def run():
        with tenant_context(tenant.organization):
            return fn()

    return run


async def test_a_spoken_question_about_hours_is_answered_by_the_business_hours_tool(daphne_server, alpha):
    async with assistant_settings(alpha, tools=["business_hours"]):
        client, conversation_id, created = await open_session(daphne_server, alpha)
        # Every widget visitor has a server-minted id, so a remembering assistant also offers to forget them.
        assert created["tools"] == ["business_hours", "forget_visitor"]
        speech, rate = read_wav("hours.wav")
        await client.stream(speech + silence(300), rate)

        tool = await client.wait_for("response.tool", response_id=2)
        done = await client.wait_for("response.done", response_id=2)
        await client.close()

    assert tool["name"] == "business_hours" and tool["status"] == "ok"
    assert done["text"].startswith(("We are open now", "We are closed right now")), done["text"]
    assert client.audio.get(2), "the answer was spoken"
    call = await eventually(
        _in_tenant(
            alpha, lambda: ToolCall.objects.filter(conversation_id=conversation_id).select_related("turn").first()
        )
    )
    assert call.name == "business_hours" and call.status == "ok" and call.turn.role == "assistant"
    assert "open_now" in json.loads(call.result)


async def test_a_typed_lead_is_captured_and_a_spoken_request_for_a_human_is_handed_off(daphne_server, alpha):
    async with assistant_settings(alpha, tools=["capture_lead", "handoff"]):
        client, conversation_id, _ = await open_session(daphne_server, alpha)
        # An email address is typed: spelled out loud it would not survive offline speech-to-text.
        await client.send({"type": "input.text", "text": "Please call me back, my name is Anna, anna@example.com"})
        lead_reply = await client.wait_for("response.done", response_id=2)
        await _say(client, "human.wav")  # "I need a human."
        handoff_reply = await client.wait_for("response.done", response_id=3)
        await client.close()

    assert lead_reply["text"] == "Thank you, Anna. We will be in touch soon."
    assert "passed your request to a colleague" in handoff_reply["text"]
    lead = await eventually(_in_tenant(alpha, lambda: Lead.objects.filter(conversation_id=conversation_id).first()))
    assert (lead.name, lead.email) == ("Anna", "anna@example.com")
    handoff = await eventually(
        _in_tenant(alpha, lambda: Handoff.objects.filter(conversation_id=conversation_id).first())
    )
    assert "Visitor: Please call me back, my name is Anna" in handoff.transcript
    assert "human" in handoff.reason and handoff.transcript.endswith(f"Visitor: {handoff.reason}")


async def test_the_assistant_ends_the_conversation_after_its_goodbye_is_heard(daphne_server, alpha):
    async with assistant_settings(alpha, tools=["end_conversation"]):
        client, conversation_id, _ = await open_session(daphne_server, alpha)
        await _say(client, "goodbye.wav")  # "thanks bye bye"
        done = await client.wait_for("response.done", response_id=2)
        ended = await client.wait_for("session.ended")
        code = await client.wait_closed()

    assert done["text"] == "Thank you for calling. Goodbye!"
    assert ended["reason"] == "assistant_ended" and code == 1000
    heard_at = client.first("session.ended").at - client.audio[2][0][0]
    assert heard_at >= done["metrics"]["audio_ms"] / 1000 - 0.3, "the goodbye was played before the close"
    conversation = await eventually(
        _in_tenant(alpha, lambda: Conversation.objects.filter(pk=conversation_id, status="ended").first())
    )
    assert conversation.end_reason == "assistant_ended"


class _OrderService(BaseHTTPRequestHandler):
    calls: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _OrderService.calls.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        order = json.loads(body)["arguments"]["order_id"]
        self.wfile.write(json.dumps({"summary": f"Order {order} left our kitchen five minutes ago."}).encode())

    def log_message(self, *args: object) -> None:
        pass


async def test_a_tenant_http_tool_is_called_signed_and_its_answer_spoken(daphne_server, alpha):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OrderService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _OrderService.calls = []

    def create_tool() -> HttpTool:
        tool = HttpTool.objects.create(
            name="order_status",
            description="Where a visitor's order is",
            parameters={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
            url=f"http://127.0.0.1:{server.server_address[1]}/orders",
        )
        tool.assistants.add(Assistant.objects.get(is_default=True))
        return tool

    tool = await sync_to_async(_in_tenant(alpha, create_tool))()
    try:
        client, conversation_id, created = await open_session(daphne_server, alpha)
        assert "order_status" in created["tools"]
        await client.send({"type": "input.text", "text": "Where is my order 4711?"})
        done = await client.wait_for("response.done", response_id=2)
        await client.close()
    finally:
        await sync_to_async(_in_tenant(alpha, tool.delete))()
        server.shutdown()

    assert done["text"] == "Order 4711 left our kitchen five minutes ago."
    [(headers, body)] = _OrderService.calls
    assert verify_signature(tool.signing_secret, body, headers["AURA-Signature"])
    assert json.loads(body)["conversation_id"] == conversation_id


async def test_a_returning_visitor_is_remembered_and_can_ask_to_be_forgotten(daphne_server, alpha):
    visitor = f"visitor-{uuid.uuid4()}"
    client, _, created = await open_session(daphne_server, alpha, visitor, text_only=True)
    assert created["remembered"] is False
    await client.send({"type": "input.text", "text": "Hi, my name is Anna. I would like to book a table for four."})
    await client.wait_for("response.done", response_id=2)
    await client.send({"type": "input.text", "text": "I'm vegetarian, by the way."})
    await client.wait_for("response.done", response_id=3)
    await client.send({"type": "session.end"})
    await client.wait_closed()

    profile = await eventually(_in_tenant(alpha, lambda: VisitorProfile.objects.filter(visitor_id=visitor).first()))
    assert profile is not None and profile.name == "Anna"
    assert profile.preferences == ["vegetarian, by the way"]
    assert profile.open_requests == ["book a table for four"]

    client, _, created = await open_session(daphne_server, alpha, visitor)
    assert created["remembered"] is True
    assert created["greeting"].startswith("Welcome back, Anna! Last time you asked about book a table for four.")
    greeting = client.first("response.done", response_id=1).event
    assert greeting["text"] == created["greeting"]
    await _say(client, "forget.wav")  # "Forget everything about me."
    done = await client.wait_for("response.done", response_id=2)
    await client.send({"type": "session.end"})
    await client.wait_closed()

    assert done["text"] == "Done: I have forgotten what I knew about you."
    await asyncio.sleep(0.5)
    assert not await sync_to_async(_in_tenant(alpha, VisitorProfile.objects.filter(visitor_id=visitor).exists))()


async def test_older_turns_are_summarised_in_the_background(daphne_server, alpha):
    async with assistant_settings(alpha, recent_turns=4):
        client, conversation_id, _ = await open_session(daphne_server, alpha, text_only=True)
        for index, text in enumerate(["I need a table.", "For four people.", "On Friday.", "At eight."], start=2):
            await client.send({"type": "input.text", "text": text})
            await client.wait_for("response.done", response_id=index)
        await client.send({"type": "session.end"})
        await client.wait_closed()

    conversation = await eventually(
        _in_tenant(alpha, lambda: Conversation.objects.filter(pk=conversation_id).exclude(summary="").first())
    )
    assert conversation is not None, "a summary was stored"
    assert conversation.summary.startswith("The visitor said: I need a table. / For four people.")
    assert conversation.summary_through >= 4
    turns = await sync_to_async(
        _in_tenant(alpha, lambda: Turn.objects.filter(conversation_id=conversation_id).count())
    )()
    assert turns == 9  # the greeting and four exchanges: summarising never cost a turn

    from billing.models import UsageEvent

    def summary_usage():
        return list(
            UsageEvent.objects.filter(conversation_id=conversation_id, idempotency_key__startswith="model:summary:")
            .values_list("metric", "provider", "model")
            .order_by("metric")
        )

    billed = await eventually(summary_usage)
    assert billed == [
        ("llm_input_tokens", "simulated", "simulated-chat"),
        ("llm_output_tokens", "simulated", "simulated-chat"),
    ], "the summary's tokens are billed like a reply's"


async def test_knowledge_answers_from_a_matching_passage_and_admits_when_it_does_not_know(daphne_server, alpha):
    from knowledge.actions import do_add_document, do_delete_document

    faq = (
        "# Bistro Aura FAQ\n\n## Menu\n\nYes, we have vegan dishes: a lentil stew, a mushroom risotto and a "
        "seasonal vegetable curry, all marked with a green leaf on the menu.\n\n## Groups\n\n"
        "Groups of more than twelve people book the private room upstairs, which seats thirty people.\n\n"
        "## Parking\n\nThere is free parking behind the restaurant for twenty cars."
    )
    document = await sync_to_async(_in_tenant(alpha, lambda: do_add_document(title="FAQ", text=faq)))()
    try:
        async with assistant_settings(alpha, tools=["search_knowledge"]):
            client, conversation_id, _ = await open_session(daphne_server, alpha)
            await _say(client, "private_room.wav")  # "How many people fit in the private room?"
            found = await client.wait_for("response.done", response_id=2)
            await client.send({"type": "input.text", "text": "What is the capital of Peru?"})
            missing = await client.wait_for("response.done", response_id=3)
            await client.close()
    finally:
        await sync_to_async(_in_tenant(alpha, lambda: do_delete_document(document=document)))()

    assert found["text"].startswith("According to FAQ"), found["text"]
    assert "seats thirty people" in found["text"]
    assert missing["text"].startswith("I'm sorry, I don't know that."), missing["text"]
    calls = await eventually(
        _in_tenant(
            alpha,
            lambda: (
                calls
                if len(
                    calls := list(
                        ToolCall.objects.filter(conversation_id=conversation_id).values_list("name", "result")
                    )
                )
                == 2
                else None
            ),
        )
    )
    assert [name for name, _ in calls] == ["search_knowledge", "search_knowledge"]
    assert "private room upstairs" in calls[0][1] and "no information" in calls[1][1]
