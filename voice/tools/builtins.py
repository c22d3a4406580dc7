"""Built-in tools a tenant switches on per assistant (Assistant.tools)."""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from conversations import actions
from conversations.visitors import forget_visitor_everywhere
from tenants.models import WEEKDAYS
from voice.tools.base import Tool, ToolContext, ToolResult

DAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,22}[0-9]$")


def _result(data: dict[str, object]) -> ToolResult:
    return ToolResult(content=json.dumps(data, ensure_ascii=False))


# ------------------------------------------------------------------ business hours
def opening_status(hours: dict[str, list[list[str]]], time_zone: str, now: datetime) -> dict[str, object]:
    """Whether the business is open at ``now`` in its time zone, until when, and when it opens next."""
    local = now.astimezone(zoneinfo.ZoneInfo(time_zone))
    today = WEEKDAYS[local.weekday()]
    clock = local.strftime("%H:%M")
    status: dict[str, object] = {
        "time_zone": time_zone,
        "local_time": f"{DAY_NAMES[today]} {clock}",
        "open_now": False,
    }
    for opens, closes in hours.get(today, []):
        if opens <= clock < closes:
            status.update(open_now=True, closes_at=closes)
            break
    if not status["open_now"]:
        for offset in range(8):
            day = WEEKDAYS[(local.weekday() + offset) % 7]
            later = [pair for pair in hours.get(day, []) if offset > 0 or pair[0] > clock]
            if later:
                when = "today" if offset == 0 else "tomorrow" if offset == 1 else DAY_NAMES[day]
                status["next_opening"] = f"{when} at {later[0][0]}"
                break
    status["week"] = {
        DAY_NAMES[day]: ", ".join(f"{o}–{c}" for o, c in hours.get(day, [])) or "closed" for day in WEEKDAYS
    }
    if status["open_now"]:
        status["summary"] = f"We are open now, until {status['closes_at']} today."
    elif "next_opening" in status:
        status["summary"] = f"We are closed right now. We open again {status['next_opening']}."
    else:
        status["summary"] = "We have no opening hours set."
    return status


class BusinessHours(Tool):
    name = "business_hours"
    description = (
        "The business's opening hours for each day of the week, and whether it is open right now "
        "(in the business's time zone). Use it for any question about hours or being open."
    )
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        return _result(
            opening_status(context.business_hours, context.time_zone, datetime.now(zoneinfo.ZoneInfo("UTC")))
        )


# ------------------------------------------------------------------ leads
class CaptureLead(Tool):
    name = "capture_lead"
    description = (
        "Save a visitor's contact details when they want to be contacted, get an offer, or leave a message. "
        "Ask for their name and an email or phone number first; confirm them back before saving."
    )
    parameters = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "email": {"type": "string", "maxLength": 254},
            "phone": {"type": "string", "maxLength": 32},
            "note": {"type": "string", "maxLength": 2000, "description": "What the visitor wants."},
        },
        "required": ["name"],
        "additionalProperties": False,
    }

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        name = str(arguments.get("name", "")).strip()
        email = str(arguments.get("email", "")).strip()
        phone = str(arguments.get("phone", "")).strip()
        problems = []
        if not name:
            problems.append("the name is empty")
        if not email and not phone:
            problems.append("an email address or a phone number is needed")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(f"“{email}” is not a valid email address")
        if phone and not _PHONE.match(phone):
            problems.append(f"“{phone}” is not a valid phone number")
        if problems:
            return ToolResult.error("; ".join(problems) + ". Ask the visitor again.")
        lead_id = await context.run_db(
            actions.do_capture_lead,
            conversation_id=context.conversation_id,
            visitor_id=context.visitor_id,
            name=name,
            email=email,
            phone=phone,
            note=str(arguments.get("note", "")).strip(),
        )
        return _result({"saved": True, "lead_id": lead_id, "summary": f"Thank you, {name}. We will be in touch soon."})


# ------------------------------------------------------------------ hand-off
class Handoff(Tool):
    name = "handoff"
    description = (
        "Hand the conversation to a human colleague when the visitor asks for a person, is unhappy, or needs "
        "something you cannot do. Records the request with the transcript; a colleague follows up."
    )
    parameters = {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
            "contact": {"type": "string", "maxLength": 200, "description": "How to reach the visitor, if given."},
        },
        "required": ["reason"],
        "additionalProperties": False,
    }

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        transcript = "\n".join(
            f"{'Visitor' if role == 'user' else 'Assistant'}: {text}" for role, text in context.transcript()
        )
        handoff_id = await context.run_db(
            actions.do_request_handoff,
            conversation_id=context.conversation_id,
            reason=str(arguments["reason"]).strip(),
            contact=str(arguments.get("contact", "")).strip(),
            transcript=transcript,
        )
        if context.transfer_call is not None:  # on the phone: put the caller through now
            context.transfer_call()
            return _result(
                {
                    "handoff_id": handoff_id,
                    "transferring": True,
                    "summary": "I am putting you through to a colleague now. Please hold.",
                }
            )
        return _result(
            {
                "handoff_id": handoff_id,
                "summary": "I have passed your request to a colleague, who will get back to you as soon as possible.",
            }
        )


# ------------------------------------------------------------------ ending
class EndConversation(Tool):
    name = "end_conversation"
    description = (
        "End the conversation when the visitor says goodbye or has nothing more to ask. "
        "Say a short goodbye in your reply; the call ends once it has been heard."
    )
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        context.end_conversation("assistant_ended")
        return _result({"ending": True, "summary": "Thank you for calling. Goodbye!"})


# ------------------------------------------------------------------ memory
class ForgetVisitor(Tool):
    name = "forget_visitor"
    description = (
        "Forget everything remembered about this visitor (their name, preferences and open requests) when "
        "they ask you to forget them or to delete their data. Nothing about them is kept afterwards."
    )
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        await context.run_db(
            forget_visitor_everywhere, visitor_id=context.visitor_id, conversation_id=context.conversation_id
        )
        context.forget_visitor()
        return _result({"forgotten": True, "summary": "Done: I have forgotten what I knew about you."})


# ------------------------------------------------------------------ knowledge
class SearchKnowledge(Tool):
    name = "search_knowledge"
    description = (
        "Search the business's knowledge base (documents the business uploaded) for facts: menus, prices, "
        "policies, products. Use it before answering any factual question about the business. If it finds "
        "nothing, say you do not know rather than guessing."
    )
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": 2, "maxLength": 300}},
        "required": ["query"],
        "additionalProperties": False,
    }

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        from knowledge.queries import format_hits_for_model, search_passages

        hits = await context.run_db(search_passages, query=str(arguments["query"]), assistant_id=context.assistant_id)
        return ToolResult(content=format_hits_for_model(hits))


BUILTIN_TOOLS: dict[str, type[Tool]] = {
    tool.name: tool for tool in (BusinessHours, CaptureLead, Handoff, EndConversation, SearchKnowledge)
}
