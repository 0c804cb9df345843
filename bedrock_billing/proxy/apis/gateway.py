"""What the Anthropic Messages and OpenAI Chat Completions adapters share: the key as
``x-api-key`` or a Bearer token, Server-Sent Events, and which refusals retrying cannot
fix (answered with ``x-should-retry: false``, which both SDKs obey)."""

from __future__ import annotations

from ..errors import ProxyError
from ..events import bearer_token
from .base import dumps

# The proxy's limits that do not reset within the minute: a retry cannot succeed.
LASTING_LIMITS = ("daily_request_limit", "monthly_token_limit", "monthly_budget")


def is_lasting_limit(err: ProxyError) -> bool:
    return err.status == 429 and err.limit in LASTING_LIMITS


def api_key_or_bearer(headers: dict[str, str]) -> str:
    """The key as the anthropic SDK sends it (``x-api-key``) or as Claude Code's
    ``ANTHROPIC_AUTH_TOKEN`` and the openai SDK do (``Authorization: Bearer``)."""
    key = headers.get("x-api-key")
    if key is not None and "authorization" not in headers:
        key = key.strip()
        if not key or len(key) > 1024 or any(c.isspace() for c in key):
            raise ProxyError(401, "invalid_token", "the token is not valid")
        return key
    return bearer_token(headers)


def retry_headers(err: ProxyError) -> dict[str, str]:
    """``retry-after`` for a limit that resets soon; ``x-should-retry: false`` for one that
    does not (the anthropic and openai SDKs then raise at once instead of retrying)."""
    if is_lasting_limit(err):
        return {"x-should-retry": "false"}
    if err.retry_after is not None and err.status in (429, 503):
        return {"Retry-After": str(err.retry_after)}
    return {}


def sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + dumps(data) + "\n\n").encode()


SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
