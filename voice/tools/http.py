"""Tenant-defined HTTP tools: the model fills in the parameters, the platform calls the tenant's URL.

Every request is signed (core.signing), bounded in time and response size, never follows a
redirect, and connects only to addresses the SSRF guard allows: the host is resolved by a guarded
resolver and the connection goes to the very address that was checked, so a DNS answer that changes
between the check and the call (rebinding) cannot reach the platform's own network.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from core.netguard import UnsafeURLError, check_address, check_url
from core.signing import SIGNATURE_HEADER, signature_header
from voice.tools.base import Tool, ToolContext, ToolResult

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "AURA-Tools/1"


class GuardedResolver(AbstractResolver):
    """Resolves like the system does, then refuses hosts with any address the platform does not call."""

    def __init__(self, *, allow_private: bool, allow_loopback: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self.allow_private, self.allow_loopback = allow_private, allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check_address(result["host"], host, allow_private=self.allow_private, allow_loopback=self.allow_loopback)
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class HttpToolConfig:
    """An HttpTool row as a session needs it (read once when the session opens)."""

    name: str
    description: str
    parameters: dict[str, object]
    url: str
    method: str
    headers: dict[str, str]
    timeout_ms: int
    signing_secret: str


class HttpTool(Tool):
    def __init__(self, config: HttpToolConfig) -> None:
        self.config = config
        self.name, self.description, self.parameters = config.name, config.description, config.parameters
        self.timeout_s = config.timeout_ms / 1000 + 0.5  # the request's own limit answers first, with a clearer error

    async def run(self, arguments: dict[str, object], context: ToolContext) -> ToolResult:
        config = self.config
        allow_private = settings.AURA_TOOL_URLS_ALLOW_PRIVATE
        allow_loopback = settings.AURA_TOOL_URLS_ALLOW_LOOPBACK
        url, body = config.url, b""
        if config.method == "GET":
            query = urlencode({key: _query_value(value) for key, value in arguments.items()})
            url = f"{url}{'&' if urlsplit(url).query else '?'}{query}" if query else url
            payload = urlsplit(url).query.encode()
        else:
            body = json.dumps(
                {"arguments": arguments, "conversation_id": context.conversation_id, "visitor_id": context.visitor_id},
                separators=(",", ":"),
            ).encode()
            payload = body
        try:  # IP literals skip resolvers: check them here, off the event loop (a host name is resolved)
            await asyncio.to_thread(check_url, url, allow_private=allow_private, allow_loopback=allow_loopback)
        except UnsafeURLError as exc:
            return ToolResult.error(f"the tool's address is not allowed: {exc}")
        headers = {
            **config.headers,
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(config.signing_secret, payload),
            "AURA-Tool": config.name,
            **({"Content-Type": "application/json"} if body else {}),
        }
        resolver = GuardedResolver(allow_private=allow_private, allow_loopback=allow_loopback)
        timeout = aiohttp.ClientTimeout(total=config.timeout_ms / 1000)
        try:
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver), timeout=timeout) as http,
                http.request(config.method, url, data=body or None, headers=headers, allow_redirects=False) as response,
            ):
                raw = await response.content.read(MAX_RESPONSE_BYTES)
                status, location = response.status, response.headers.get("Location", "")
        except UnsafeURLError as exc:
            return ToolResult.error(f"the tool's address is not allowed: {exc}")
        except TimeoutError:
            return ToolResult.error(f"{config.name} did not answer within {config.timeout_ms} ms")
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, UnsafeURLError):
                return ToolResult.error(f"the tool's address is not allowed: {cause}")
            return ToolResult.error(f"{config.name} could not be reached ({type(exc).__name__})")
        text = _readable(raw)
        if 300 <= status < 400:
            return ToolResult.error(
                f"{config.name} answered with a redirect to {location or '?'}; redirects are not followed"
            )
        if status >= 400:
            return ToolResult.error(f"{config.name} answered HTTP {status}: {text[:500]}")
        return ToolResult(content=text or "(empty response)")


def _query_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _readable(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text.strip()


def http_tool_config(row: Any) -> HttpToolConfig:
    """An HttpTool row (voice.models) as the session keeps it."""
    return HttpToolConfig(
        name=row.name,
        description=row.description,
        parameters=row.parameters,
        url=row.url,
        method=row.method,
        headers=dict(row.headers or {}),
        timeout_ms=row.timeout_ms,
        signing_secret=row.signing_secret,
    )
