"""Tenant-defined HTTP tools: the model fills in the parameters, the platform calls the tenant's URL.

Every request is signed (core.signing), bounded in time and response size, and goes through the
platform's outbound client (core.netguard): the host is resolved and checked under today's settings
at every connection, the connection goes to the very address that was checked (a DNS answer that
changes between the check and the call cannot reach the platform's own network), and no redirect is
followed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2

from core import netguard
from core.netguard import RedirectRefusedError, UnsafeURLError
from core.signing import SIGNATURE_HEADER, signature_header
from voice.tools.base import Tool, ToolContext, ToolResult

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "AURA-Tools/1"


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
        url, body = config.url, b""
        if urlsplit(url).scheme not in ("http", "https"):
            return ToolResult.error("the tool's address is not allowed: use an http:// or https:// address.")
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
        headers: dict[str, str | bytes] = {
            **{name: value.encode() for name, value in config.headers.items()},  # UTF-8 as given, not only ASCII
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(config.signing_secret, payload),
            "AURA-Tool": config.name,
            "Accept-Encoding": "identity",  # the size limit counts bytes as sent: no compressed bombs
            **({"Content-Type": "application/json"} if body else {}),
        }
        limit_s = config.timeout_ms / 1000
        try:
            async with (
                asyncio.timeout(limit_s),
                netguard.async_client(netguard.tool_policy, timeout=limit_s) as http,
                http.stream(config.method, url, content=body or None, headers=headers) as response,
            ):
                raw = b""
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) >= MAX_RESPONSE_BYTES:
                        raw = raw[:MAX_RESPONSE_BYTES]
                        break
                status = response.status_code
        except RedirectRefusedError as exc:
            return ToolResult.error(
                f"{config.name} answered with a redirect to {exc.location or '?'}; redirects are not followed"
            )
        except UnsafeURLError as exc:
            return ToolResult.error(f"the tool's address is not allowed: {exc}")
        except (TimeoutError, httpx2.TimeoutException):
            return ToolResult.error(f"{config.name} did not answer within {config.timeout_ms} ms")
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
            return ToolResult.error(f"{config.name} could not be reached ({type(exc).__name__})")
        text = _readable(raw)
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
