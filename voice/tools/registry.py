"""The tools one assistant offers in a session: its switched-on built-ins and its active HTTP tools."""

from __future__ import annotations

from collections.abc import Sequence

from voice.tools.base import Tool
from voice.tools.builtins import BUILTIN_TOOLS, ForgetVisitor
from voice.tools.http import HttpTool, HttpToolConfig


def assistant_tools(
    builtin_names: Sequence[str], http_tools: Sequence[HttpToolConfig], *, can_forget_visitor: bool
) -> list[Tool]:
    tools: list[Tool] = [BUILTIN_TOOLS[name]() for name in builtin_names if name in BUILTIN_TOOLS]
    if can_forget_visitor:  # remembering a visitor always comes with the way to be forgotten
        tools.append(ForgetVisitor())
    tools.extend(HttpTool(config) for config in http_tools)
    return tools
