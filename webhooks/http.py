"""One HTTP POST to a tenant's URL, through the platform's outbound client (core.netguard).

The host name is resolved and checked under today's settings at the connection (loopback, link-local,
metadata, IPv6 forms of private IPv4 and, unless allowed, private addresses are refused), the
connection goes to the address checked, with the host name only in the Host header and TLS's SNI and
certificate check, and no redirect is followed: a 3xx answer is the attempt's result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2

from core import netguard
from core.netguard import RedirectRefusedError, UnsafeURLError

RESPONSE_BODY_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None
    response_body: str
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    policy: netguard.PolicySource = netguard.webhook_policy,
) -> PostResult:
    """POST ``body``; the whole attempt (connecting, sending, the answer's head and the part of its body
    that is kept) must be over within ``timeout_s``, or it is a timeout whatever the status."""
    started = time.monotonic()

    def late() -> bool:
        return time.monotonic() - started > timeout_s

    def done(status: int | None = None, response: bytes = b"", error: str = "") -> PostResult:
        text = response[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace").replace("\x00", "")
        return PostResult(status, text, error[:300], int((time.monotonic() - started) * 1000))

    try:
        with (
            netguard.sync_client(policy, timeout=timeout_s) as client,
            client.stream("POST", url, content=body, headers={**headers, "Accept-Encoding": "identity"}) as response,
        ):
            received = b""
            for chunk in response.iter_raw():  # each read is bounded by timeout_s; a slow drip by the whole
                received += chunk
                if len(received) >= RESPONSE_BODY_LIMIT or late():
                    break
            if late():
                return done(error=f"no answer within {timeout_s:g} s")
            return done(response.status_code, received)
    except RedirectRefusedError as exc:
        return done(exc.status_code, error=f"redirect to {exc.location} not followed")
    except UnsafeURLError as exc:
        return done(error=f"refused: {exc}")
    except httpx2.TimeoutException:
        return done(error=f"no answer within {timeout_s:g} s")
    except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
        return done(error=f"{type(exc).__name__}: {exc}")
