"""Bedrock Runtime's own REST API, so boto3, the AWS SDKs, AnthropicBedrock, LangChain and
Claude Code's Bedrock mode work by changing only the endpoint and the key:

``POST {prefix}/model/{modelId}/invoke | invoke-with-response-stream | converse |
converse-stream | count-tokens``, plus the start-up calls Claude Code makes
(``HEAD /`` and ``GET /inference-profiles``).

Answers are Bedrock's: the model's bytes with the token-count headers, event-stream frames
for streams (an error during a stream is an exception frame), and errors as
``x-amzn-ErrorType`` plus ``{"message": ...}`` so botocore raises the modelled exception.
Refusals map to the exception whose default retry policy is right (docs/proxy.md):
a limit that will not reset within the minute is ``ServiceQuotaExceededException`` (400,
never retried), requests per minute ``ThrottlingException`` (429 with ``Retry-After``).
"""

from __future__ import annotations

import base64
from urllib.parse import unquote

from ...core import eventstream
from ..bedrock import Result
from ..call import INVOKE, Call, StreamEvent
from ..errors import ProxyError, bad_request
from ..events import Request, parse_json_object, read_body
from .base import Adapter, body_response, dumps

# The proxy's limits that do not reset within the minute: retrying cannot help.
_QUOTA_LIMITS = ("daily_request_limit", "monthly_token_limit", "monthly_budget")


def aws_error(err: ProxyError) -> tuple[int, str, str]:
    """(status, exception name, message) for a refusal or a Bedrock error."""
    if err.aws_code:  # Bedrock's own error, passed through (ARNs and account ids masked)
        return err.aws_status or err.status, err.aws_code, err.aws_message or err.message
    if err.limit in _QUOTA_LIMITS:
        return 400, "ServiceQuotaExceededException", err.message
    if err.limit == "requests_per_minute" or err.status == 429:
        return 429, "ThrottlingException", err.message
    if err.status in (401, 403):
        return 403, "AccessDeniedException", err.message
    if err.status == 404:
        if err.code == "not_found":
            return 404, "UnknownOperationException", err.message
        return 404, "ResourceNotFoundException", err.message
    if err.status in (400, 405, 413):
        return err.status, "ValidationException", err.message
    if err.status == 503:
        return 503, "ServiceUnavailableException", err.message
    return 500, "InternalServerException", err.message


def _stream_exception_name(code: str) -> str:
    """A stream's exception member is the exception's name in lower camel case."""
    return code[:1].lower() + code[1:]


class BedrockRuntimeAdapter(Adapter):
    name = "bedrock-runtime"

    def __init__(self, operation: str, stream: bool = False):
        self.operation = operation
        self.stream = stream

    def parse(self, request: Request, params: dict[str, str], max_body: int) -> Call:
        model_id = unquote(params["model"])  # boto3 sends %3A and %2F; others send ':' as is
        data = read_body(request, max_body)
        call = Call(
            self.operation,
            model_id,
            stream=self.stream,
            headers=request.headers,
            wire_api=self.name,
        )
        if self.operation == INVOKE:
            if not data:
                raise bad_request("missing_body", "the request needs a body")
            call.raw_body = data
        else:
            call.body = parse_json_object(data)
        return call

    def render(self, call: Call, result: Result, headers: dict[str, str]) -> dict:
        content_type = result.content_type if call.operation == INVOKE else "application/json"
        return body_response(
            200, result.body, {**headers, **_bedrock_headers(result), "Content-Type": content_type}
        )

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        status, code, message = aws_error(err)
        out = {
            **headers,
            "Content-Type": "application/json",
            "x-amzn-ErrorType": code,
            "x-amzn-RequestId": request_id,
        }
        if err.retry_after is not None and status == 429:
            out["Retry-After"] = str(err.retry_after)
        return body_response(status, dumps({"message": message}).encode(), out)

    def stream_headers(self, call: Call) -> dict[str, str]:
        out = {"Content-Type": eventstream.CONTENT_TYPE}
        if call.operation == INVOKE:
            out["X-Amzn-Bedrock-Content-Type"] = "application/json"
        return out

    def encode_event(self, call: Call, event: StreamEvent) -> bytes:
        if event.raw is not None:
            payload = {"bytes": base64.b64encode(event.raw).decode("ascii")}
            return eventstream.encode_event("chunk", dumps(payload).encode())
        return eventstream.encode_event(event.kind, dumps(event.payload).encode())

    def encode_error(self, call: Call, err: ProxyError, request_id: str) -> bytes:
        _, code, message = aws_error(err)
        return eventstream.encode_exception(_stream_exception_name(code), message)


def _bedrock_headers(result: Result) -> dict[str, str]:
    """Bedrock's answer headers (token counts, latency, tier) in their canonical case."""
    return {_canonical(name): value for name, value in result.headers.items()}


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


# ---- Claude Code's start-up calls: answered by the proxy, no Bedrock call, not metered.


def ping(request_id: str, headers: dict[str, str]) -> dict:
    return body_response(200, b"", {**headers, "x-amzn-RequestId": request_id})


def inference_profiles(
    models: list[str], region: str | None, request_id: str, headers: dict[str, str]
) -> dict:
    """``ListInferenceProfiles``' shape, from the product's own model table: the system
    profiles of the proxy's geography for the models this customer may use (moto and the
    sandbox have no inference-profile API; a deployment's role is not given
    ``bedrock:ListInferenceProfiles`` just for this)."""
    geo = geography(region)
    region = region or "us-east-1"
    summaries = []
    for model in sorted(models):
        profile_id = f"{geo}.{model}"
        summaries.append(
            {
                "inferenceProfileName": f"{geo.upper()} {model}",
                "description": f"Routes requests to {model} in the {geo} geography.",
                "inferenceProfileArn": f"arn:aws:bedrock:{region}::inference-profile/{profile_id}",
                "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model}"}],
                "inferenceProfileId": profile_id,
                "status": "ACTIVE",
                "type": "SYSTEM_DEFINED",
            }
        )
    body = dumps({"inferenceProfileSummaries": summaries}).encode()
    return body_response(
        200, body, {**headers, "Content-Type": "application/json", "x-amzn-RequestId": request_id}
    )


def geography(region: str | None) -> str:
    """The system inference profiles' prefix for a region (us-east-1 -> us)."""
    region = region or "us-east-1"
    if region.startswith("us-gov-"):
        return "us-gov"
    for prefix, geo in (("us-", "us"), ("eu-", "eu"), ("ca-", "ca")):
        if region.startswith(prefix):
            return geo
    if region.startswith("ap-"):
        return "apac"
    return "us"
