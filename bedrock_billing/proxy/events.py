"""Lambda events in, Lambda responses out: API Gateway REST (payload 1.0) and Function URLs
or HTTP APIs (payload 2.0), CORS, and the JSON body's first checks.

Nothing here touches AWS; every malformed input becomes a :class:`ProxyError` (4xx).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field

from .errors import ProxyError, bad_request


@dataclass
class Request:
    method: str
    path: str  # as API Gateway gave it (may still be percent-encoded)
    headers: dict[str, str]  # lower-cased names
    raw_body: str | bytes | None
    is_base64: bool
    request_id: str
    query: dict[str, list[str]] = field(default_factory=dict)
    source_ip: str | None = None

    @property
    def origin(self) -> str | None:
        return self.headers.get("origin")


def _headers(event: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    raw = event.get("headers")
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(name, str) and isinstance(value, str):
                out[name.lower()] = value
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list) and values:
                if name.lower() not in out and isinstance(values[0], str):
                    out[name.lower()] = values[0]
    return out


def _query(event: dict) -> dict[str, list[str]]:
    """Query parameters from either payload: 1.0's (multi)queryStringParameters, 2.0's
    rawQueryString / queryStringParameters (comma-joined repeats)."""
    out: dict[str, list[str]] = {}
    multi = event.get("multiValueQueryStringParameters")
    if isinstance(multi, dict):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list):
                out[name] = [v for v in values if isinstance(v, str)]
    single = event.get("queryStringParameters")
    if isinstance(single, dict):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str) and name not in out:
                out[name] = [value]
    return out


def _source_ip(context: dict) -> str | None:
    """The caller's address as API Gateway saw it (never a header a client can set)."""
    identity = context.get("identity")
    http = context.get("http")
    for holder in (identity, http):
        if isinstance(holder, dict) and isinstance(holder.get("sourceIp"), str):
            return holder["sourceIp"]
    return None


def parse_event(event: object) -> Request:
    """Read method, path, headers and body from either payload format."""
    if not isinstance(event, dict):
        raise bad_request("invalid_event", "the request could not be read")
    context = event.get("requestContext")
    context = context if isinstance(context, dict) else {}
    request_id = context.get("requestId")
    if not isinstance(request_id, str) or not request_id or len(request_id) > 128:
        request_id = str(uuid.uuid4())
    http = context.get("http") if isinstance(context.get("http"), dict) else {}
    if event.get("version") == "2.0" or http:
        method = http.get("method")
        path = event.get("rawPath")
    else:
        method = event.get("httpMethod")
        path = event.get("path")
    if not isinstance(method, str):
        method = ""
    if not isinstance(path, str):
        path = "/"
    body = event.get("body")
    if body is not None and not isinstance(body, (str, bytes)):
        body = None
    return Request(
        method=method.upper(),
        path=path,
        headers=_headers(event),
        raw_body=body,
        is_base64=event.get("isBase64Encoded") is True,
        request_id=request_id,
        query=_query(event),
        source_ip=_source_ip(context),
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def read_body(request: Request, max_bytes: int) -> bytes:
    """The body's bytes, bounded before anything is decoded; empty bytes when there is none."""
    raw = request.raw_body
    if raw is None or raw == "" or raw == b"":
        return b""
    if isinstance(raw, str):
        encoded_bound = 4 * (max_bytes // 3 + 1) if request.is_base64 else max_bytes
        if len(raw) > encoded_bound:
            raise ProxyError(413, "body_too_large", f"the body exceeds {max_bytes} bytes")
        if request.is_base64:
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("invalid_body", "the body is not valid base64") from None
        else:
            try:
                data = raw.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request("invalid_json", "the body is not valid UTF-8") from None
    else:
        data = raw
    if len(data) > max_bytes:
        raise ProxyError(413, "body_too_large", f"the body exceeds {max_bytes} bytes")
    return data


def parse_json_object(data: bytes) -> dict:
    if not data:
        raise bad_request("missing_body", "the request needs a JSON body")
    try:
        body = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, NaN, huge integers
        raise bad_request("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    return body


def read_json_body(request: Request, max_bytes: int) -> dict:
    return parse_json_object(read_body(request, max_bytes))


def bearer_token(headers: dict[str, str]) -> str:
    value = headers.get("authorization")
    if value is None or not value.strip():
        raise ProxyError(401, "missing_token", "an Authorization: Bearer token is required")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ProxyError(401, "invalid_auth_scheme", "use Authorization: Bearer <token>")
    token = token.strip()
    if not token or len(token) > 1024 or any(c.isspace() for c in token):
        raise ProxyError(401, "invalid_token", "the token is not valid")
    return token


# ---- responses


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """CORS headers for an allowed origin; for others only ``Vary: Origin`` (the browser then
    blocks). ``Vary`` goes on every answer once origins are configured, so a shared cache
    never serves one origin's answer to another."""
    if not allowed:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"} if origin else {}
    if origin and origin.rstrip("/") in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def preflight(origin: str | None, allowed: tuple[str, ...]) -> dict:
    headers = cors_headers(origin, allowed)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",  # GET: lists, portal
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            }
        )
    return {"statusCode": 204, "headers": headers, "body": "", "isBase64Encoded": False}


def json_response(status: int, body: str, headers: dict[str, str] | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def error_response(error: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
    extra = dict(headers)
    if error.retry_after is not None:
        extra["Retry-After"] = str(error.retry_after)
    return json_response(error.status, json.dumps(error.body(request_id)), extra)
