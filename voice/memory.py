"""What the model is shown of a conversation, and what is remembered beyond it.

* The model sees the assistant's instructions, what is remembered about the visitor, a running
  summary of older turns, and the recent turns word for word (``compose``).
* Older turns are summarised in the background by the chat model (``summarize``), never on the way
  to a reply: until a new summary is ready the previous one is used.
* When a conversation ends, a short profile of the visitor (name, preferences, open requests) is
  updated from it (``learn_profile``); a returning visitor is greeted with it (``welcome_back``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from voice.providers.base import ChatMessage, ChatModel, RouteLog, TextDelta, Usage

logger = logging.getLogger(__name__)

SUMMARY_BATCH = 4  # older messages that must pile up before a new summary is made
MAX_SUMMARY_CHARS = 1500
MAX_ITEMS = 5

SUMMARY_PROMPT = (
    "You maintain the running summary of a conversation between a visitor and a voice assistant. "
    "Given the summary so far and the turns that followed it, write the new summary: at most 120 words, "
    "third person, keeping names, numbers, dates, requests and anything promised. Output only the summary."
)
PROFILE_PROMPT = (
    "You keep a short profile of a returning visitor to a business's voice assistant. Given the profile so far "
    "and the latest conversation, answer with JSON only: "
    '{"name": "<first name or empty>", "preferences": ["<short phrase>", ...], '
    '"open_requests": ["<request not yet resolved>", ...]}. At most five items per list; drop requests that '
    "were resolved. Keep only what the visitor said about themselves."
)


@dataclass(slots=True)
class Profile:
    name: str = ""
    preferences: list[str] = field(default_factory=list)
    open_requests: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.name or self.preferences or self.open_requests)

    def describe(self) -> str:
        parts = []
        if self.name:
            parts.append(f"Name: {self.name}.")
        if self.preferences:
            parts.append("Preferences: " + "; ".join(self.preferences) + ".")
        if self.open_requests:
            parts.append("Open requests from earlier conversations: " + "; ".join(self.open_requests) + ".")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ModelUse:
    """What one background model call cost, for billing: the model that answered and its tokens."""

    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0

    def as_kwargs(self) -> dict[str, object]:
        return {
            "llm_provider": self.provider,
            "llm_model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def compose(
    instructions: str,
    history: Sequence[ChatMessage],
    *,
    recent_turns: int,
    summarized: int = 0,
    summary: str = "",
    profile: Profile | None = None,
    context: str = "",
) -> list[ChatMessage]:
    """The messages one reply is generated from. ``summarized``: how many of ``history`` the summary covers."""
    system = instructions.strip()
    if context:
        system += "\n\n" + context
    if profile is not None and not profile.is_empty:
        system += "\n\nWhat you remember about this visitor from earlier conversations: " + profile.describe()
    if summary:
        system += "\n\nSummary of the earlier part of this conversation: " + summary
    # The recent turns, and any older ones the summary does not cover yet (it is made in the background).
    return [
        ChatMessage(role="system", content=system),
        *history[min(summarized, max(0, len(history) - recent_turns)) :],
    ]


def welcome_back(profile: Profile, greeting: str) -> str:
    """A returning visitor's greeting: their name and what they were waiting for, then the usual question."""
    if profile.is_empty:
        return greeting
    opening = f"Welcome back, {profile.name}!" if profile.name else "Welcome back!"
    if profile.open_requests:
        opening += f" Last time you asked about {_as_clause(profile.open_requests[-1])}."
    question = _last_question(greeting) or "How can I help you today?"
    return f"{opening} {question}"


def transcript_text(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(
        f"{'Visitor' if m.role == 'user' else 'Assistant'}: {m.content}"
        for m in messages
        if m.role in ("user", "assistant") and m.content
    )


async def summarize(chat: ChatModel, previous: str, turns: Sequence[ChatMessage]) -> tuple[str, ModelUse]:
    request = f"Summary so far: {previous or '(none)'}\n\nTurns that followed:\n{transcript_text(turns)}"
    text, use = await complete(chat, SUMMARY_PROMPT, request)
    return text.strip()[:MAX_SUMMARY_CHARS], use


async def learn_profile(chat: ChatModel, previous: Profile, turns: Sequence[ChatMessage]) -> tuple[Profile, ModelUse]:
    """The visitor's profile after this conversation. A model answer that is not the asked-for JSON is
    not trusted: the profile is then updated by the rules of ``profile_from_rules``."""
    request = f"Profile so far: {json.dumps(_as_dict(previous))}\n\nLatest conversation:\n{transcript_text(turns)}"
    answer, use = await complete(chat, PROFILE_PROMPT, request)
    parsed = _parse_profile(answer)
    if parsed is None:
        logger.info("the profile answer was not JSON; using the rules instead")
        return profile_from_rules(previous, turns), use
    return parsed, use


async def complete(chat: ChatModel, prompt: str, request: str) -> tuple[str, ModelUse]:
    """One background request to the chat model (not a reply): its whole answer and what it cost."""
    parts = []
    provider, model = getattr(chat, "provider", ""), getattr(chat, "model", "")
    tokens = (0, 0)
    messages = [ChatMessage(role="system", content=prompt), ChatMessage(role="user", content=request)]
    async for event in chat.stream(messages):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, Usage):
            tokens = (event.input_tokens, event.output_tokens)
        elif isinstance(event, RouteLog) and event.chosen is not None:
            provider, model = event.chosen.provider, event.chosen.model
    return "".join(parts), ModelUse(provider, model, *tokens)


def json_object_in(answer: str) -> dict[str, object] | None:
    """The JSON object a model was asked to answer with, found in its answer (which may wrap it in prose)."""
    match = re.search(r"\{.*\}", answer, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _parse_profile(answer: str) -> Profile | None:
    data = json_object_in(answer)
    if data is None:
        return None
    lists = [data.get("preferences", []), data.get("open_requests", [])]
    if not isinstance(data.get("name", ""), str) or not all(isinstance(items, list) for items in lists):
        return None
    clean = [[str(item).strip()[:200] for item in items if str(item).strip()][:MAX_ITEMS] for items in lists]
    return Profile(name=data.get("name", "").strip()[:120], preferences=clean[0], open_requests=clean[1])


# ------------------------------------------------------------------ rules: the simulated model, and the fallback
_NAME = re.compile(r"\b(?:my name is|my name's|call me|this is)\s+([a-zA-Z][a-zA-Z'-]{1,30})", re.IGNORECASE)
_NOT_NAMES = frozenset(
    {
        "a",
        "an",
        "the",
        "not",
        "just",
        "really",
        "very",
        "so",
        "about",
        "for",
        "it",
        "that",
        "back",
        "later",
        "again",
        "now",
        "soon",
    }
)
_PREFERENCE = re.compile(
    r"\b(i (?:really )?(?:prefer|like|love|don't like|do not like|hate)|i'm allergic to|i am allergic to|"
    r"i'm (?:a )?(?:vegetarian|vegan)|i am (?:a )?(?:vegetarian|vegan))\b([^.?!]*)",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:i would like to|i'd like to|i want to|i need to|i need|can you|could you)\s+([^.?!]{3,120})", re.IGNORECASE
)
_RESOLVED = re.compile(r"\b(booked|confirmed|done|all set|sent|saved|passed your request)\b", re.IGNORECASE)


def names_said(text: str) -> list[str]:
    """The names a visitor gave for themselves ("my name is…", "call me…"), capitalised, in order."""
    return [m.group(1).capitalize() for m in _NAME.finditer(text) if m.group(1).lower() not in _NOT_NAMES]


def profile_from_rules(previous: Profile, turns: Sequence[ChatMessage]) -> Profile:
    """A profile from what the visitor said in plain words: "my name is…", "I prefer…", "I'd like to…"."""
    name = previous.name
    preferences = list(previous.preferences)
    requests = list(previous.open_requests)
    for index, message in enumerate(turns):
        if message.role != "user":
            continue
        for said in names_said(message.content):
            name = said
        for match in _PREFERENCE.finditer(message.content):
            phrase = (match.group(1) + match.group(2)).strip()
            phrase = re.sub(r"^i('m| am)\s+", "", phrase, flags=re.IGNORECASE)
            phrase = re.sub(r"^i\s+", "", phrase, flags=re.IGNORECASE)
            _add(preferences, phrase)
        for match in _REQUEST.finditer(message.content):
            answer = next((m.content for m in turns[index + 1 :] if m.role == "assistant"), "")
            if not _RESOLVED.search(answer):
                _add(requests, match.group(1).strip())
    return Profile(name=name, preferences=preferences[-MAX_ITEMS:], open_requests=requests[-MAX_ITEMS:])


def simulated_answer(prompt: str, request: str) -> str | None:
    """How the simulated chat model does the two memory tasks (deterministic, no model)."""
    if prompt == SUMMARY_PROMPT:
        previous, _, turns = request.partition("\n\nTurns that followed:\n")
        previous = previous.removeprefix("Summary so far: ")
        said = [line.split(": ", 1)[1] for line in turns.splitlines() if line.startswith("Visitor: ")]
        summary = "" if previous == "(none)" else previous + " "
        return (summary + ("The visitor said: " + " / ".join(said) + "." if said else "")).strip()[-MAX_SUMMARY_CHARS:]
    if prompt == PROFILE_PROMPT:
        head, _, conversation = request.partition("\n\nLatest conversation:\n")
        try:
            previous = Profile(**json.loads(head.removeprefix("Profile so far: ")))
        except (ValueError, TypeError):
            previous = Profile()
        turns = [
            ChatMessage(role="user" if line.startswith("Visitor: ") else "assistant", content=line.split(": ", 1)[-1])
            for line in conversation.splitlines()
        ]
        return json.dumps(_as_dict(profile_from_rules(previous, turns)))
    return None


def _add(items: list[str], phrase: str) -> None:
    phrase = phrase.strip(" ,;")[:200]
    if phrase and phrase.lower() not in (item.lower() for item in items):
        items.append(phrase)


def _as_dict(profile: Profile) -> dict[str, object]:
    return {"name": profile.name, "preferences": profile.preferences, "open_requests": profile.open_requests}


def _as_clause(request: str) -> str:
    return request.rstrip(".?! ")


def _last_question(greeting: str) -> str:
    sentences = re.findall(r"[^.!?]*\?", greeting)
    return sentences[-1].strip() if sentences else ""
