"""The Bedrock call: InvokeModel / Converse, streamed or not, the usage each one reports,
and Bedrock's errors mapped to honest HTTP statuses without internal text.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from .errors import ProxyError
from .usage import (
    HEADER_CACHE_READ,
    HEADER_CACHE_WRITE,
    HEADER_INPUT,
    HEADER_OUTPUT,
    HEADER_SERVICE_TIER,
    StreamUsage,
    Usage,
    estimate,
    from_body,
    from_body_usage,
    from_headers,
)

ChunkSink = Callable[[dict], None]
PASSED_HEADERS = (HEADER_INPUT, HEADER_OUTPUT, HEADER_CACHE_READ, HEADER_CACHE_WRITE)


@dataclass
class Result:
    usage: Usage
    bedrock_request_id: str | None = None
    service_tier: str | None = None
    body: str | None = None  # the answer, unchanged (non-streamed)
    body_is_base64: bool = False
    content_type: str = "application/json"
    chunks: list[dict] = field(default_factory=list)  # streamed: every chunk, in order
    headers: dict[str, str] = field(default_factory=dict)  # token counts passed to the client


def _meta(response: dict) -> tuple[str | None, dict]:
    meta = response.get("ResponseMetadata") or {}
    return meta.get("RequestId"), meta.get("HTTPHeaders") or {}


def _tier(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("type")
    return value if isinstance(value, str) else None


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _dumps(value) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


# ---- errors

_STATUS = {
    "ValidationException": (400, "bedrock_validation_error"),
    "AccessDeniedException": (403, "bedrock_access_denied"),
    "ResourceNotFoundException": (404, "model_not_found"),
    "ThrottlingException": (429, "bedrock_throttled"),
    "ServiceQuotaExceededException": (429, "bedrock_quota_exceeded"),
    "TooManyRequestsException": (429, "bedrock_throttled"),
    "ModelTimeoutException": (504, "bedrock_timeout"),
    "ModelNotReadyException": (503, "model_not_ready"),
    "ServiceUnavailableException": (503, "bedrock_unavailable"),
    "ModelErrorException": (502, "model_error"),
    "ModelStreamErrorException": (502, "model_stream_error"),
    "InternalServerException": (502, "bedrock_internal_error"),
}
_MESSAGES = {
    400: "Bedrock rejected the request as invalid",
    403: "the proxy is not allowed to call this model",
    404: "the model was not found",
    429: "Bedrock is throttling requests; retry later",
    503: "the model is not available right now; retry later",
    504: "the model did not answer in time",
    502: "Bedrock failed to answer",
}
_SCRUB = re.compile(r"arn:aws[\w:/\-.*+]*|\b\d{12}\b")


def _safe_validation_text(message: object) -> str:
    """Bedrock's validation text is about the client's own payload (a missing field, a bad
    value), so it is passed on, less any ARN or account number, and bounded."""
    if not isinstance(message, str) or not message.strip():
        return _MESSAGES[400]
    return "Bedrock rejected the request: " + _SCRUB.sub("<redacted>", message.strip())[:500]


def map_error(exc: Exception) -> ProxyError:
    """Bedrock's (or botocore's) error as a ProxyError for an admitted request."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        code = code[:1].upper() + code[1:]  # stream errors arrive as "throttlingException"
        status, name = _STATUS.get(code, (502, "bedrock_error"))
        message = _safe_validation_text(error.get("Message")) if status == 400 else None
        retry = 1 if status in (429, 503) else None
        return ProxyError(
            status, name, message or _MESSAGES[status], retry_after=retry, billable_error=True
        )
    if isinstance(exc, ParamValidationError):
        return ProxyError(400, "invalid_request", _param_text(exc), billable_error=True)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return ProxyError(504, "bedrock_timeout", _MESSAGES[504], billable_error=True)
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return ProxyError(502, "bedrock_unreachable", _MESSAGES[502], billable_error=True)
    return ProxyError(502, "bedrock_error", _MESSAGES[502], billable_error=True)


def _param_text(exc: ParamValidationError) -> str:
    """botocore's report without the offending value (it is the customer's prompt) or
    Python's type reprs: 'Invalid type for parameter messages[0].content (valid: list)'."""
    report = str(exc.kwargs.get("report") or "")
    parts = []
    for line in report.splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(", value:")
        valid = re.search(r"valid types: (.*)$", rest)
        if valid:
            head += " (valid: " + ", ".join(re.findall(r"<class '(\w+)'>", valid.group(1))) + ")"
        parts.append(head)
    return ("invalid request parameters: " + "; ".join(parts))[:300] if parts else _MESSAGES[400]


# ---- calls


def _attach_partial(exc: Exception, usage: Usage | None) -> None:
    """A stream that broke mid-way: its usage so far goes to the log (not billed)."""
    try:
        exc.partial_usage = usage
    except AttributeError:
        pass


def invoke(client, model_id: str, payload: dict) -> Result:
    request = _dumps(payload)
    response = client.invoke_model(
        modelId=model_id,
        body=request.encode("utf-8"),
        contentType="application/json",
        accept="application/json",
    )
    raw = response["body"].read()
    request_id, headers = _meta(response)
    usage = from_headers(headers)
    try:
        text, is_b64 = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(raw).decode("ascii"), True
    if usage is None:
        try:
            usage = from_body(json.loads(raw))
        except ValueError:
            usage = None
    if usage is None:
        usage = estimate(len(request), len(raw))
    return Result(
        usage=usage,
        bedrock_request_id=request_id,
        service_tier=_tier(response.get("serviceTier") or headers.get(HEADER_SERVICE_TIER)),
        body=text,
        body_is_base64=is_b64,
        content_type=response.get("contentType") or "application/json",
        headers={h: str(headers[h]) for h in PASSED_HEADERS if h in headers},
    )


def invoke_stream(client, model_id: str, payload: dict, on_chunk: ChunkSink | None) -> Result:
    request = _dumps(payload)
    response = client.invoke_model_with_response_stream(
        modelId=model_id,
        body=request.encode("utf-8"),
        contentType="application/json",
        accept="application/json",
    )
    request_id, headers = _meta(response)
    result = Result(
        usage=Usage(),
        bedrock_request_id=request_id,
        service_tier=_tier(headers.get(HEADER_SERVICE_TIER)),
    )
    tracker = StreamUsage()
    try:
        for event in response["body"]:
            part = event.get("chunk") if isinstance(event, dict) else None
            if part is None:
                # An exception member of the union (botocore usually raises these itself).
                name = next(iter(event), "internalServerException")
                raise ClientError({"Error": {"Code": name, "Message": ""}}, "InvokeModelStream")
            raw = part.get("bytes") or b""
            try:
                chunk = json.loads(raw)
            except ValueError:
                chunk = {"bytes": base64.b64encode(raw).decode("ascii")}
            if not isinstance(chunk, dict):
                chunk = {"value": chunk}
            tracker.observe(chunk, len(raw))
            result.chunks.append(chunk)
            if on_chunk:
                on_chunk(chunk)
    except Exception as exc:
        _attach_partial(exc, tracker.result(len(request)))
        raise
    result.usage = tracker.result(len(request))
    return result


def converse(client, model_id: str, payload: dict) -> Result:
    response = client.converse(modelId=model_id, **payload)
    request_id, headers = _meta(response)
    answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    body = _dumps(answer)
    usage = from_body_usage(response.get("usage")) or estimate(len(_dumps(payload)), len(body))
    metrics = response.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("latencyMs"), int):
        usage.latency_ms = metrics["latencyMs"]
    return Result(
        usage=usage,
        bedrock_request_id=request_id,
        service_tier=_tier(response.get("serviceTier") or headers.get(HEADER_SERVICE_TIER)),
        body=body,
    )


def converse_stream(client, model_id: str, payload: dict, on_chunk: ChunkSink | None) -> Result:
    response = client.converse_stream(modelId=model_id, **payload)
    request_id, headers = _meta(response)
    result = Result(
        usage=Usage(),
        bedrock_request_id=request_id,
        service_tier=_tier(headers.get(HEADER_SERVICE_TIER)),
    )
    usage = None
    answer_chars = 0
    try:
        for event in response["stream"]:
            if not isinstance(event, dict):
                continue
            chunk = json.loads(_dumps(event))  # bytes to base64, so the chunk is plain JSON
            answer_chars += len(_dumps(chunk))
            metadata = event.get("metadata")
            if isinstance(metadata, dict):
                usage = from_body_usage(metadata.get("usage")) or usage
                latency = (metadata.get("metrics") or {}).get("latencyMs")
                if usage and isinstance(latency, int):
                    usage.latency_ms = latency
            result.chunks.append(chunk)
            if on_chunk:
                on_chunk(chunk)
    except Exception as exc:
        _attach_partial(exc, usage)
        raise
    result.usage = usage or estimate(len(_dumps(payload)), answer_chars)
    return result
