"""The shape every tool has, what it gets to work with, and the box of tools one turn may use.

A tool is a name, a description and a JSON-Schema of parameters the model sees, plus ``run``. Its
result is text for the model; a failure is a result too (``is_error``), never an exception that
ends the turn: the model is told and answers the visitor in words.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voice.providers.base import ToolCall, ToolSpec
from voice.tools.schema import ArgumentsError, parse_arguments

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 4000  # what the model is given of any one result


@dataclass(slots=True)
class ToolContext:
    """What a tool may use: the tenant's schema (``run_db``), the conversation, and the session's hooks."""

    conversation_id: str
    visitor_id: str
    assistant_id: int
    time_zone: str
    business_hours: dict[str, list[list[str]]]
    run_db: Callable[..., Awaitable[Any]]  # run_db(fn, **kwargs): fn(**kwargs) in the tenant's schema, off the loop
    transcript: Callable[[], list[tuple[str, str]]] = list  # (role, text) so far, oldest first
    end_conversation: Callable[[str], None] = lambda reason: None  # the session ends after the reply is heard
    forget_visitor: Callable[[], None] = lambda: None
    # A phone call with a transfer number: the call is put through to it once the reply is heard.
    transfer_call: Callable[[], None] | None = None
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)  # product events to announce


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(content=f"Error: {message}", is_error=True)


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One executed call, as stored with the turn (conversations.ToolCall)."""

    name: str
    arguments: dict[str, object]
    result: str
    is_error: bool
    duration_ms: float
    round: int

    def as_record(self) -> dict[str, object]:
        return {
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "status": "error" if self.is_error else "ok",
            "duration_ms": round(self.duration_ms, 1),
            "round": self.round,
        }


class Tool(ABC):
    name: str
    description: str
    parameters: dict[str, object]
    timeout_s: float = 10.0

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    @abstractmethod
    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult: ...


class ToolBox:
    """The tools one assistant offers, and their execution with validation, time limits and records."""

    def __init__(self, tools: Sequence[Tool], context: ToolContext) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.context = context

    def __bool__(self) -> bool:
        return bool(self.tools)

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self.tools.values())

    async def run(self, call: ToolCall, *, round_: int) -> ToolRun:
        started = time.monotonic()
        tool = self.tools.get(call.name)
        arguments: dict[str, object] = {}
        if tool is None:
            result = ToolResult.error(f"there is no tool called {call.name}")
        else:
            try:
                arguments = parse_arguments(call.arguments, tool.parameters)
                async with asyncio.timeout(tool.timeout_s):
                    result = await tool.run(arguments, self.context)
            except ArgumentsError as exc:
                result = ToolResult.error(f"invalid arguments: {exc}")
            except TimeoutError:
                result = ToolResult.error(f"{call.name} did not answer within {tool.timeout_s:g} s")
            except Exception:  # a broken tool must never end the turn: the model is told instead
                logger.exception("tool %s failed in %s", call.name, self.context.conversation_id)
                result = ToolResult.error(f"{call.name} failed unexpectedly")
        # Stored with the turn: a NUL or a lone surrogate (a tool's server can answer either) would make
        # PostgreSQL refuse the whole turn, its usage events included.
        content = result.content.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
        if len(content) > MAX_RESULT_CHARS:
            content = content[:MAX_RESULT_CHARS] + " …[truncated]"
        return ToolRun(
            name=call.name,
            arguments=arguments,
            result=content,
            is_error=result.is_error,
            duration_ms=(time.monotonic() - started) * 1000,
            round=round_,
        )
