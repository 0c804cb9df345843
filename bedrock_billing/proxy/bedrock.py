"""The Bedrock call: InvokeModel / Converse (streamed or not) and CountTokens, the usage
each one reports, and Bedrock's errors mapped to honest HTTP statuses without internal text.

The client's request reaches Bedrock as it was sent: an InvokeModel body byte for byte, the
``X-Amzn-Bedrock-*`` request headers as the operation's modelled parameters (read from the
bundled botocore's own model, so a header the SDK does not know is refused clearly before
admission), and Converse bodies converted from the wire's JSON to botocore's parameters by
botocore's own parser (base64 blobs to bytes), validated before admission.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.parsers import RestJSONParser
from botocore.validate import ParamValidator

from .call import CONVERSE, COUNT_TOKENS, INVOKE, Call, EventSink, StreamEvent
from .deadline import bound_reads, deadline_error
from .errors import ProxyError, bad_request
from .metadata import MetadataError, merge, merge_header
from .usage import (
    HEADER_CACHE_READ,
    HEADER_CACHE_WRITE,
    HEADER_INPUT,
    HEADER_LATENCY,
    HEADER_OUTPUT,
    HEADER_SERVICE_TIER,
    StreamUsage,
    Usage,
    estimate,
    from_body,
    from_body_usage,
    from_headers,
    generated_chars,
    with_1h_split,
)

PASSED_HEADERS = (
    HEADER_INPUT,
    HEADER_OUTPUT,
    HEADER_CACHE_READ,
    HEADER_CACHE_WRITE,
    HEADER_LATENCY,
    HEADER_SERVICE_TIER,
    "x-amzn-bedrock-performanceconfig-latency",
)
# Headers whose botocore parameter the proxy sets itself, not from the client's header.
_OWN_HEADERS = {"content-type", "accept", "x-amzn-bedrock-accept"}
_OPERATIONS = {
    (INVOKE, False): "InvokeModel",
    (INVOKE, True): "InvokeModelWithResponseStream",
    (CONVERSE, False): "Converse",
    (CONVERSE, True): "ConverseStream",
    (COUNT_TOKENS, False): "CountTokens",
}


@dataclass
class Result:
    usage: Usage | None
    bedrock_request_id: str | None = None
    service_tier: str | None = None
    body: bytes = b""  # the answer (non-streamed): the model's bytes, or Converse's JSON
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # Bedrock's, passed to the client


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


def scrub(message: object, limit: int = 500) -> str | None:
    """Bedrock's own wording less any ARN or account number (the operator's), bounded."""
    if not isinstance(message, str) or not message.strip():
        return None
    return _SCRUB.sub("<redacted>", message.strip())[:limit]


# Bedrock's own statuses for its exceptions (botocore's service model), for pass-through.
_AWS_STATUS = {
    "AccessDeniedException": 403,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "ModelStreamErrorException": 424,
    "ModelTimeoutException": 408,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
    "ValidationException": 400,
}


def map_error(exc: Exception) -> ProxyError:
    """Bedrock's (or botocore's) error as a ProxyError for an admitted request."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        code = code[:1].upper() + code[1:]  # stream errors arrive as "throttlingException"
        status, name = _STATUS.get(code, (502, "bedrock_error"))
        message = _safe_validation_text(error.get("Message")) if status == 400 else None
        retry = 1 if status in (429, 503) else None
        known = code in _AWS_STATUS
        return ProxyError(
            status,
            name,
            message or _MESSAGES[status],
            retry_after=retry,
            billable_error=True,
            aws_code=code if known else "InternalServerException",
            aws_status=_AWS_STATUS.get(code, 500),
            aws_message=scrub(error.get("Message")) or _MESSAGES[status],
        )
    if isinstance(exc, ParamValidationError):
        return ProxyError(400, "invalid_request", _param_text(exc), billable_error=True)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        # A read timeout came after Bedrock had the request: it may be generating, and AWS
        # bills that. A connect timeout never reached it.
        return ProxyError(
            504,
            "bedrock_timeout",
            _MESSAGES[504],
            billable_error=True,
            aws_code="ModelTimeoutException",
            aws_status=408,
            undelivered=isinstance(exc, ReadTimeoutError),
        )
    if isinstance(exc, (EndpointConnectionError, BotoCoreError)):
        return ProxyError(
            502,
            "bedrock_unreachable",
            _MESSAGES[502],
            billable_error=True,
            aws_code="ServiceUnavailableException",
            aws_status=503,
        )
    return ProxyError(
        502,
        "bedrock_error",
        _MESSAGES[502],
        billable_error=True,
        aws_code="InternalServerException",
        aws_status=500,
    )


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


def operation_name(call: Call) -> str:
    return _OPERATIONS[(call.operation, call.stream)]


_MODEL_CACHE: list = []


def _service_model(client):
    """bedrock-runtime's model from the client (or botocore's own, for stand-in clients)."""
    meta = getattr(client, "meta", None)
    if meta is not None and getattr(meta, "service_model", None) is not None:
        return meta.service_model
    if not _MODEL_CACHE:
        import botocore.session

        _MODEL_CACHE.append(botocore.session.get_session().get_service_model("bedrock-runtime"))
    return _MODEL_CACHE[0]


def _supported(client, operation: str):
    try:
        return _service_model(client).operation_model(operation)
    except Exception:  # OperationNotFoundError: the bundled botocore predates it
        raise ProxyError(
            400,
            "operation_not_supported",
            f"{operation} is not supported by this proxy's AWS SDK",
        ) from None


def _header_params(model, headers: dict[str, str]) -> dict[str, str]:
    """The client's ``X-Amzn-Bedrock-*`` headers as the operation's modelled parameters.

    A Bedrock header this botocore has no parameter for is refused (400) rather than
    silently dropped: it may change what Bedrock does (a service tier, a guardrail)."""
    by_header = {
        m.serialization["name"].lower(): name
        for name, m in model.input_shape.members.items()
        if m.serialization.get("location") == "header"
    }
    params: dict[str, str] = {}
    for header, value in headers.items():
        if header in _OWN_HEADERS:
            continue
        if header in by_header:
            params[by_header[header]] = value
        elif header.startswith("x-amzn-bedrock-"):
            raise bad_request(
                "unsupported_header", f"the header {header} is not supported by this proxy"
            )
    return params


def _body_params(model, body: dict, model_id: str) -> dict:
    """A JSON body as botocore's parameters: members checked, blobs decoded, validated."""
    shape = model.input_shape
    for key in body:
        member = shape.members.get(key)
        if member is None or member.serialization.get("location"):
            raise bad_request("invalid_request", f"the field {key[:64]!r} is not permitted")
    try:
        params = RestJSONParser()._parse_shape(shape, body)
    except Exception:  # a blob that is not base64, a wrong type where a map is due, ...
        raise bad_request("invalid_request", "the request body does not match the API") from None
    params["modelId"] = model_id
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise bad_request(
            "invalid_request", _param_text(ParamValidationError(report=report.generate_report()))
        )
    return params


def prepare(client, call: Call, model_id: str, tags: dict[str, str] | None = None) -> dict:
    """The botocore parameters for ``call``; every client error is raised here, before
    admission, so a malformed request costs the customer nothing.

    ``tags``: the proxy's request metadata (proxy/metadata.py), set over the client's own
    on the operations that take it (not CountTokens)."""
    model = _supported(client, operation_name(call))
    params = _header_params(model, call.headers)
    if call.operation == INVOKE:
        body = call.raw_body if call.raw_body is not None else _dumps(call.body).encode()
        params.update(
            body=body,
            contentType=call.headers.get("content-type") or "application/json",
            accept=call.headers.get("accept")
            or call.headers.get("x-amzn-bedrock-accept")
            or "application/json",
        )
    else:
        params.update(_body_params(model, call.body or {}, model_id))
    params["modelId"] = model_id
    if tags and "requestMetadata" in model.input_shape.members:
        try:
            if call.operation == INVOKE:
                params["requestMetadata"] = merge_header(params.get("requestMetadata"), tags)
            else:
                params["requestMetadata"] = merge(params.get("requestMetadata"), tags)
        except MetadataError as exc:
            raise bad_request("invalid_request", str(exc)) from None
    return params


def request_size(call: Call, params: dict) -> int:
    """The bytes sent to Bedrock: InvokeModel's body, or Converse's members as JSON."""
    if call.operation == INVOKE:
        return len(params.get("body") or b"")
    return _request_chars(params)


# Where each model family's InvokeModel body sets its output cap, and Converse's.
_MAX_TOKEN_PATHS = (
    ("max_tokens",),  # Anthropic Messages, Mistral, AI21, Cohere
    ("max_gen_len",),  # Llama
    ("max_tokens_to_sample",),  # Anthropic Text Completions
    ("textGenerationConfig", "maxTokenCount"),  # Titan
    ("inferenceConfig", "max_new_tokens"),  # Nova's InvokeModel body
    ("inferenceConfig", "maxTokens"),  # Converse
)


def requested_max_tokens(call: Call, params: dict) -> int | None:
    """The output-token cap the request set, if any (logged at admission: with the input
    size, it bounds what an abandoned request can have cost)."""
    body = params if call.operation == CONVERSE else call.body
    if body is None and call.operation == INVOKE:
        try:
            body = json.loads(params.get("body") or b"")
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    for path in _MAX_TOKEN_PATHS:
        value = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def call_bedrock(
    client, call: Call, params: dict, on_event: EventSink | None, deadline=None
) -> Result:
    if call.operation == INVOKE:
        if call.stream:
            return invoke_stream(client, params, on_event, deadline)
        return invoke(client, params)
    if call.operation == CONVERSE:
        if call.stream:
            return converse_stream(client, params, on_event, deadline)
        return converse(client, params)
    return count_tokens(client, params)


def _attach_partial(exc: Exception, usage: Usage | None, request_id: str | None) -> None:
    """A stream that broke mid-way: its usage so far and Bedrock's request id go to the
    log (not billed)."""
    try:
        exc.partial_usage = usage
        exc.bedrock_request_id = request_id
    except AttributeError:
        pass


def failed_request_id(exc: Exception) -> str | None:
    """Bedrock's request id of a failed call: from its error answer, or from a stream that
    broke after it began (``_attach_partial``); None when Bedrock never answered."""
    known = getattr(exc, "bedrock_request_id", None)
    if isinstance(known, str) and known:
        return known
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata") or {}
        found = meta.get("RequestId") or (meta.get("HTTPHeaders") or {}).get("x-amzn-requestid")
        if isinstance(found, str) and found:
            return found
    return None


_DEADLINE_SLACK = 0.05  # seconds


def _stop_at_deadline(body, deadline) -> None:
    """After an event: past the deadline, stop reading (Bedrock's stream is closed) and
    answer the client's timeout; else bound the next read by the time that is left."""
    if deadline is None:
        return
    if deadline.expired():
        close = getattr(body, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing a broken connection: nothing more to read anyway
                pass
        raise deadline_error()
    bound_reads(body, deadline)


def _stream_failure(exc: Exception, deadline) -> Exception:
    """A read that failed once the deadline had passed (the bounded read timed out) is the
    deadline's stop; Bedrock's own errors stay what they are."""
    if deadline is not None and not isinstance(exc, (ProxyError, ClientError)):
        if deadline.remaining() <= _DEADLINE_SLACK:  # a bounded read may wake a hair early
            return deadline_error()
    return exc


def _passed(headers: dict) -> dict[str, str]:
    return {h: str(headers[h]) for h in PASSED_HEADERS if h in headers}


def invoke(client, params: dict) -> Result:
    response = client.invoke_model(**params)
    raw = response["body"].read()
    request_id, headers = _meta(response)
    usage = from_headers(headers)
    answer = None
    if usage is None or usage.cache_write_input_tokens:
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
    if usage is None:
        usage = from_body(answer)
    elif isinstance(answer, dict):  # the headers carry no cache lifetime split: the body may
        with_1h_split(usage, answer.get("usage"))
    if usage is None:
        text = generated_chars(answer) if isinstance(answer, dict) else len(raw)
        usage = estimate(len(params["body"]), text)
    return Result(
        usage=usage,
        bedrock_request_id=request_id,
        service_tier=_tier(response.get("serviceTier") or headers.get(HEADER_SERVICE_TIER)),
        body=raw,
        content_type=response.get("contentType") or "application/json",
        headers=_passed(headers),
    )


def invoke_stream(client, params: dict, on_event: EventSink | None, deadline=None) -> Result:
    response = client.invoke_model_with_response_stream(**params)
    request_id, headers = _meta(response)
    result = Result(
        usage=Usage(),
        bedrock_request_id=request_id,
        service_tier=_tier(response.get("serviceTier") or headers.get(HEADER_SERVICE_TIER)),
        content_type=response.get("contentType") or "application/json",
        headers=_passed(headers),
    )
    tracker = StreamUsage()
    request_size = len(params["body"])
    body = response["body"]
    try:
        bound_reads(body, deadline)
        for event in body:
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
            if on_event:
                on_event(StreamEvent("chunk", chunk, raw))
            _stop_at_deadline(body, deadline)
    except Exception as exc:
        failure = _stream_failure(exc, deadline)
        _attach_partial(failure, tracker.result(request_size), request_id)
        if failure is exc:
            raise
        raise failure from None
    result.usage = tracker.result(request_size)
    return result


def _plain(value):
    """botocore's parsed answer as plain JSON (bytes to base64, times to ISO 8601)."""
    return json.loads(_dumps(value))


def converse(client, params: dict) -> Result:
    response = client.converse(**params)
    request_id, headers = _meta(response)
    answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    body = _dumps(answer)
    usage = from_body_usage(response.get("usage")) or estimate(
        len(_dumps({k: v for k, v in params.items() if k != "modelId"})),
        generated_chars(_plain(answer.get("output"))),
    )
    metrics = response.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("latencyMs"), int):
        usage.latency_ms = metrics["latencyMs"]
    return Result(
        usage=usage,
        bedrock_request_id=request_id,
        service_tier=_tier(response.get("serviceTier") or headers.get(HEADER_SERVICE_TIER)),
        body=body.encode(),
        headers=_passed(headers),
    )


def converse_stream(client, params: dict, on_event: EventSink | None, deadline=None) -> Result:
    response = client.converse_stream(**params)
    request_id, headers = _meta(response)
    result = Result(
        usage=Usage(),
        bedrock_request_id=request_id,
        service_tier=_tier(headers.get(HEADER_SERVICE_TIER)),
        headers=_passed(headers),
    )
    tracker = StreamUsage(converse=True)
    stream = response["stream"]
    try:
        bound_reads(stream, deadline)
        for event in stream:
            if not isinstance(event, dict) or not event:
                continue
            ((kind, members),) = list(_plain(event).items())[:1]
            tracker.observe({kind: members})
            metadata = event.get("metadata")
            if isinstance(metadata, dict):
                latency = (metadata.get("metrics") or {}).get("latencyMs")
                if tracker.reported and isinstance(latency, int):
                    tracker.reported.latency_ms = latency
                result.service_tier = _tier(metadata.get("serviceTier")) or result.service_tier
            if on_event:
                on_event(StreamEvent(kind, members if isinstance(members, dict) else {}))
            _stop_at_deadline(stream, deadline)
    except Exception as exc:
        failure = _stream_failure(exc, deadline)
        _attach_partial(failure, tracker.result(_request_chars(params)), request_id)
        if failure is exc:
            raise
        raise failure from None
    result.usage = tracker.result(_request_chars(params))
    return result


def _request_chars(params: dict) -> int:
    return len(_dumps({k: v for k, v in params.items() if k != "modelId"}))


def count_tokens(client, params: dict) -> Result:
    response = client.count_tokens(**params)
    request_id, headers = _meta(response)
    answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return Result(usage=None, bedrock_request_id=request_id, body=_dumps(answer).encode())
