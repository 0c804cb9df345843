"""The first version's API: ``POST .../bedrock`` (InvokeModel) and ``.../bedrock/converse``
(Converse), with ``modelId`` and ``"stream"`` in the JSON body.

Answers and errors keep their first shapes: the model's body, ``{"error": {...}}`` refusals,
streams as Server-Sent Events (``data: {chunk}`` lines ending ``data: [DONE]``) where the
answer can be streamed, and the stopgap JSON array of chunks where it cannot.
"""

from __future__ import annotations

import json

from ..bedrock import Result
from ..call import CONVERSE, INVOKE, Call, StreamEvent
from ..errors import ProxyError, bad_request
from ..events import Request, error_response, json_response, read_json_body
from .base import Adapter, body_response, dumps


class LegacyAdapter(Adapter):
    name = "legacy"

    def __init__(self, operation: str):
        self.operation = operation

    def parse(self, request: Request, params: dict[str, str], max_body: int) -> Call:
        body = read_json_body(request, max_body)
        model_id = body.pop("modelId", None)
        if model_id is None:
            raise bad_request("missing_model_id", "modelId is required")
        stream = body.pop("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("invalid_stream", "stream must be true or false")
        return Call(self.operation, model_id, stream=stream, body=body, wire_api=self.name)

    def render(self, call: Call, result: Result, headers: dict[str, str]) -> dict:
        content_type = result.content_type if call.operation == INVOKE else "application/json"
        out = {**headers, **result.headers, "Content-Type": content_type}
        return body_response(200, result.body, out)

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        return error_response(err, request_id, headers)

    def stream_headers(self, call: Call) -> dict[str, str]:
        return {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

    @staticmethod
    def _chunk(call: Call, event: StreamEvent) -> dict:
        return event.payload if call.operation == INVOKE else {event.kind: event.payload}

    def encode_event(self, call: Call, event: StreamEvent) -> bytes:
        return b"data: " + dumps(self._chunk(call, event)).encode() + b"\n\n"

    def encode_end(self, call: Call) -> bytes:
        return b"data: [DONE]\n\n"

    def encode_error(self, call: Call, err: ProxyError, request_id: str) -> bytes:
        return b"data: " + dumps(err.body(request_id)).encode() + b"\n\n"

    def buffered_stream(self, call, events, error, request_id, headers) -> dict:
        if error is not None:
            return self.refuse(error, request_id, headers)
        chunks = [self._chunk(call, e) for e in events] + [{"done": True}]
        return json_response(200, json.dumps(chunks), headers)


INVOKE_API = LegacyAdapter(INVOKE)
CONVERSE_API = LegacyAdapter(CONVERSE)
