"""Anthropic's Messages API: ``POST {prefix}/v1/messages`` (Claude Code's gateway format,
the ``anthropic`` SDK) and ``POST {prefix}/v1/messages/count_tokens``.

A Messages request is served by Bedrock's InvokeModel (or its stream) on the Anthropic
model it names: the model moves to the path, the body gets
``anthropic_version: "bedrock-2023-05-31"``, the ``anthropic-beta`` header becomes the
body's ``anthropic_beta`` list. Fields and betas Bedrock does not accept are dropped where
dropping them leaves the answer as it would be, refused (400, naming the field) where it
would not; docs/proxy.md lists both with sources. Bedrock's answer body *is* a Messages
answer, and its stream's chunks are the Messages stream's events, so they go back nearly
as they came (as Server-Sent Events, less Bedrock's metrics).

Errors are Anthropic's: ``{"type": "error", "error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations

import base64
import json

from ..bedrock import Result
from ..call import COUNT_TOKENS, INVOKE, Call, StreamEvent
from ..errors import ProxyError, bad_request
from ..events import Request, read_json_body
from .base import Adapter, body_response, dumps
from .gateway import SSE_HEADERS, api_key_or_bearer, retry_headers, sse

BEDROCK_VERSION = "bedrock-2023-05-31"

# Passed to Bedrock as sent (Bedrock's "Request and Response" page for Claude's Messages
# API, plus thinking and output_config from its extended-thinking and structured-output
# pages).
PASSED = (
    "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences",
    "tools", "tool_choice", "thinking", "output_config",
)
# Dropped: Bedrock refuses them ("Extra inputs are not permitted") and the answer does not
# depend on them (metadata.user_id is Anthropic's abuse tracking; service_tier is
# Anthropic's capacity choice; context_management edits the context Claude Code manages
# itself; output_config.effort is a hint Bedrock rejects).
DROPPED = ("metadata", "service_tier", "context_management")
DROPPED_OUTPUT_CONFIG = ("effort",)
# Refused: features of Anthropic's own platform that Bedrock does not run, whose absence
# would change the answer.
REFUSED = ("mcp_servers", "container")
# Beta values Bedrock accepts in ``anthropic_beta`` (AWS's Claude pages; LiteLLM and
# coder/aibridge keep the same kind of allow-list after Claude Code's betas broke Bedrock
# calls). Every other value is dropped, with the field it enables.
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
    }
)
# Tool members of Anthropic's custom tools that Bedrock knows; others (beta additions such
# as eager_input_streaming, defer_loading) are dropped.
_CUSTOM_TOOL_KEYS = ("type", "name", "description", "input_schema", "cache_control")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_body(err: ProxyError) -> dict:
    message = err.aws_message if err.aws_code and err.aws_message else err.message
    kind = _ERROR_TYPES.get(err.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def betas(header: str | None) -> list[str]:
    """The ``anthropic-beta`` header's values that Bedrock accepts, in order."""
    values = [v.strip() for v in (header or "").split(",") if v.strip()]
    return [v for v in dict.fromkeys(values) if v in BEDROCK_BETAS]


def _tool(tool) -> dict:
    if not isinstance(tool, dict):
        raise bad_request("invalid_request", "tools: each tool must be an object")
    if tool.get("type") in (None, "custom"):
        return {k: tool[k] for k in _CUSTOM_TOOL_KEYS if k in tool}
    return tool  # Bedrock's own tool types (computer, bash, text editor): as sent


def to_bedrock(body: dict, beta_header: str | None, *, counting: bool = False) -> dict:
    """A Messages request as Bedrock's InvokeModel body (the model and stream taken out)."""
    for name in REFUSED:
        if name in body:
            raise bad_request(
                "unsupported_parameter", f"{name} is not supported on this endpoint"
            )
    out: dict = {"anthropic_version": BEDROCK_VERSION}
    for key, value in body.items():
        if key in ("model", "stream") or key in DROPPED:
            continue
        if key not in PASSED:
            raise bad_request(
                "unsupported_parameter", f"the field {key[:64]!r} is not supported"
            )
        out[key] = value
    if isinstance(out.get("output_config"), dict):
        config = {k: v for k, v in out["output_config"].items() if k not in DROPPED_OUTPUT_CONFIG}
        if config:
            out["output_config"] = config
        else:
            del out["output_config"]
    if isinstance(out.get("tools"), list):
        out["tools"] = [_tool(t) for t in out["tools"]]
    if counting:
        out.setdefault("max_tokens", 1)  # CountTokens checks the body as InvokeModel would
    accepted = betas(beta_header)
    if accepted:
        out["anthropic_beta"] = accepted
    return out


def _model(body: dict):
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("invalid_request", "model: a model name is required")
    return model


class MessagesAdapter(Adapter):
    name = "anthropic-messages"

    def __init__(self, counting: bool = False):
        self.counting = counting

    def token(self, request: Request) -> str:
        return api_key_or_bearer(request.headers)

    def parse(self, request: Request, params: dict[str, str], max_body: int) -> Call:
        body = read_json_body(request, max_body)
        model = _model(body)
        beta = request.headers.get("anthropic-beta")
        if self.counting:
            invoke = to_bedrock(body, beta, counting=True)
            blob = base64.b64encode(dumps(invoke).encode()).decode("ascii")
            return Call(
                COUNT_TOKENS,
                model,
                body={"input": {"invokeModel": {"body": blob}}},
                wire_api=self.name,
            )
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("invalid_request", "stream: must be true or false")
        return Call(
            INVOKE,
            model,
            stream=stream,
            raw_body=dumps(to_bedrock(body, beta)).encode(),
            headers={"content-type": "application/json", "accept": "application/json"},
            wire_api=self.name,
        )

    def render(self, call: Call, result: Result, headers: dict[str, str]) -> dict:
        out = {**headers, "Content-Type": "application/json"}
        if call.operation == COUNT_TOKENS:
            try:
                count = json.loads(result.body).get("inputTokens")
            except (ValueError, AttributeError):
                count = None
            return body_response(200, dumps({"input_tokens": count}).encode(), out)
        return body_response(200, result.body, out)

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        out = {
            **headers,
            **retry_headers(err),
            "Content-Type": "application/json",
            "request-id": request_id,
        }
        return body_response(err.status, dumps(error_body(err)).encode(), out)

    # ---- streams: Bedrock's chunks are the Messages stream's events already

    def stream_headers(self, call: Call) -> dict[str, str]:
        return dict(SSE_HEADERS)

    def encode_event(self, call: Call, event: StreamEvent) -> bytes:
        data = {k: v for k, v in event.payload.items() if k != "amazon-bedrock-invocationMetrics"}
        kind = data.get("type") if isinstance(data.get("type"), str) else "message"
        out = sse(data, kind)
        if kind == "message_start":
            out += sse({"type": "ping"}, "ping")
        return out

    def encode_error(self, call: Call, err: ProxyError, request_id: str) -> bytes:
        return sse(error_body(err), "error")


MESSAGES = MessagesAdapter()
COUNT_MESSAGE_TOKENS = MessagesAdapter(counting=True)
