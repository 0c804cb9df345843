"""What every wire API adapter provides: parse a request into a :class:`~..call.Call`, and
render the answer, the stream events and the refusals in its own format.

An adapter holds no limit, price or metering logic; the pipeline (``proxy/handler.py``)
knows no wire format.
"""

from __future__ import annotations

import base64
import json

from ..bedrock import Result
from ..call import Call, StreamEvent
from ..errors import ProxyError
from ..events import Request, bearer_token, json_response


class Adapter:
    name = ""  # the wire API's name in the log line

    def token(self, request: Request) -> str:
        return bearer_token(request.headers)

    def parse(self, request: Request, params: dict[str, str], max_body: int) -> Call:
        raise NotImplementedError

    # ---- answers

    def render(self, call: Call, result: Result, headers: dict[str, str]) -> dict:
        raise NotImplementedError

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        raise NotImplementedError

    # ---- streams: live (the local server, a streaming deployment) or buffered (Lambda's
    # one-piece answer). The status and headers go out with the first event.

    def stream_headers(self, call: Call) -> dict[str, str]:
        raise NotImplementedError

    def encode_event(self, call: Call, event: StreamEvent) -> bytes:
        raise NotImplementedError

    def encode_end(self, call: Call) -> bytes:
        return b""

    def encode_error(self, call: Call, err: ProxyError, request_id: str) -> bytes:
        raise NotImplementedError

    def buffered_stream(
        self,
        call: Call,
        events: list[StreamEvent],
        error: ProxyError | None,
        request_id: str,
        headers: dict[str, str],
    ) -> dict:
        """All of a stream in one answer (the events as one binary body by default)."""
        data = b"".join(self.encode_event(call, e) for e in events)
        data += self.encode_error(call, error, request_id) if error else self.encode_end(call)
        return binary_response(200, data, headers)


def binary_response(status: int, data: bytes, headers: dict[str, str]) -> dict:
    """A Lambda proxy answer with a binary body (API Gateway decodes it for the client
    when the content type is one of the API's binary media types)."""
    return {
        "statusCode": status,
        "headers": headers,
        "body": base64.b64encode(data).decode("ascii"),
        "isBase64Encoded": True,
    }


def body_response(status: int, data: bytes, headers: dict[str, str]) -> dict:
    """Text when the bytes are UTF-8, else base64 (a model may answer in any encoding)."""
    try:
        return {**json_response(status, data.decode("utf-8"), {}), "headers": headers}
    except UnicodeDecodeError:
        return binary_response(status, data, headers)


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))
