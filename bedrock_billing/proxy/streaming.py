"""The proxy's entry point in a deployment: Lambda's Runtime API in streaming mode.

Lambda's managed Python runtime answers an invocation in one piece. To stream, the
function runs this loop instead (the zip's ``stream_bootstrap``, started through
``AWS_LAMBDA_EXEC_WRAPPER``; docs/decisions.md says why this and not the Lambda Web
Adapter): it takes each invocation from ``/runtime/invocation/next``, serves it with the
same :class:`~.handler.Proxy` as every other path, and posts the answer to
``/runtime/invocation/{id}/response`` as it is produced, in the form API Gateway's
streaming Lambda integration expects:

* request headers ``Lambda-Runtime-Function-Response-Mode: streaming`` and
  ``Transfer-Encoding: chunked``, the content type
  ``application/vnd.awslambda.http-integration-response``, and a ``Trailer`` header
  naming the two error trailers;
* a JSON prelude ``{"statusCode": ..., "headers": {...}}`` and eight NUL bytes, written
  when the proxy fixes its status (admission and Bedrock's first event come before);
* then each event as the proxy encoded it (event-stream frames, SSE lines), one HTTP chunk
  each; a failure after the prelude goes in-band (the proxy's own error event), and only
  a failure of this loop itself is reported in the ``Lambda-Runtime-Function-Error-*``
  trailers.

A non-streamed answer goes out the same way in one piece (prelude, then the whole body),
so one integration serves every route. The request's deadline is the invocation's
``Lambda-Runtime-Deadline-Ms``, exposed as the context's
``get_remaining_time_in_millis()`` on the proxy's own clock (tests move that clock).

If the client hangs up, Lambda keeps the function running: the writes go nowhere, the
proxy keeps reading Bedrock's stream and meters what was generated. A write to the Runtime
API that fails marks the stream broken and later writes are dropped for the same reason.

Standard library and the proxy only: no web framework, no extra process.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

API_VERSION = "2018-06-01"
PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\x00" * 8
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"


@dataclass(frozen=True)
class Invocation:
    """One event from ``/runtime/invocation/next`` and the headers that describe it."""

    request_id: str
    deadline_ms: int  # Unix time in milliseconds when Lambda stops the function
    body: bytes
    function_arn: str = ""
    trace_id: str = ""


class LambdaContext:
    """The parts of Lambda's context object the proxy reads, for this invocation."""

    def __init__(self, invocation: Invocation, now_ms: Callable[[], int]):
        self.aws_request_id = invocation.request_id
        self.invoked_function_arn = invocation.function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.deadline_ms = invocation.deadline_ms
        self._now_ms = now_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - self._now_ms())


class RuntimeAPI:
    """A client of the Runtime API at ``AWS_LAMBDA_RUNTIME_API`` (host:port)."""

    def __init__(self, address: str | None = None):
        address = address or os.environ["AWS_LAMBDA_RUNTIME_API"]
        host, _, port = address.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.base = f"/{API_VERSION}/runtime"

    def connect(self) -> http.client.HTTPConnection:
        # No timeout: /next blocks until Lambda has an invocation, and a response stream
        # lasts as long as the generation.
        return http.client.HTTPConnection(self.host, self.port)

    def next(self) -> Invocation:
        conn = self.connect()
        try:
            conn.request("GET", f"{self.base}/invocation/next")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"the Runtime API answered /next with {response.status}")
            header = response.getheader
            return Invocation(
                request_id=header("Lambda-Runtime-Aws-Request-Id") or "",
                deadline_ms=int(header("Lambda-Runtime-Deadline-Ms") or 0),
                body=body,
                function_arn=header("Lambda-Runtime-Invoked-Function-Arn") or "",
                trace_id=header("Lambda-Runtime-Trace-Id") or "",
            )
        finally:
            conn.close()

    def post_error(self, path: str, error_type: str, message: str) -> None:
        """``/init/error`` or ``/invocation/{id}/error``: only before a response began."""
        body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        conn = self.connect()
        try:
            conn.request(
                "POST",
                f"{self.base}/{path}",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Function-Error-Type": error_type,
                },
            )
            conn.getresponse().read()
        finally:
            conn.close()

    def response(self, request_id: str) -> ResponseStream:
        return ResponseStream(self, request_id)


class ResponseStream:
    """The proxy's stream writer over one ``/invocation/{id}/response`` request."""

    def __init__(self, api: RuntimeAPI, request_id: str):
        self.api, self.request_id = api, request_id
        self.started = False
        self.broken = False  # the Runtime API connection failed: later writes are dropped
        self.bytes_sent = 0
        self._conn: http.client.HTTPConnection | None = None

    def start(self, status: int, headers: dict[str, str]) -> None:
        if self.started:
            raise RuntimeError("the response has already started")
        self.started = True
        conn = self._conn = self.api.connect()
        try:
            conn.putrequest(
                "POST",
                f"{self.api.base}/invocation/{self.request_id}/response",
                skip_accept_encoding=True,
            )
            conn.putheader("Content-Type", PRELUDE_CONTENT_TYPE)
            conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}")
            conn.endheaders()
        except OSError:
            self.broken = True
            return
        prelude = {"statusCode": int(status), "headers": dict(headers)}
        self._chunk(json.dumps(prelude, separators=(",", ":")).encode() + DELIMITER)

    def write(self, data: bytes) -> None:
        if not self.started:
            raise RuntimeError("write before start")
        if data:
            self._chunk(data)

    def _chunk(self, data: bytes) -> None:
        if self.broken or self._conn is None:
            return
        try:
            self._conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            self.bytes_sent += len(data)
        except OSError:
            self.broken = True

    def finish(self, error: tuple[str, str] | None = None) -> None:
        """The last chunk, with the error trailers when this loop itself failed mid-way."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self.broken:
                end = b"0\r\n"
                if error is not None:
                    error_type, message = error
                    detail = json.dumps({"errorType": error_type, "errorMessage": message})
                    end += f"{ERROR_TYPE_TRAILER}: {error_type}\r\n".encode()
                    end += f"{ERROR_BODY_TRAILER}: ".encode()
                    end += base64.b64encode(detail.encode()) + b"\r\n"
                conn.send(end + b"\r\n")
                conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            self.broken = True
        finally:
            conn.close()  # the Runtime API wants the connection closed after a response


def _body_bytes(response: dict) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def serve_one(proxy, api: RuntimeAPI, now_ms: Callable[[], int] | None = None) -> None:
    """Take one invocation, serve it through ``proxy`` and post the answer as it comes."""
    invocation = api.next()
    if invocation.trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id  # as the managed runtime does
    try:
        event = json.loads(invocation.body)
    except ValueError:
        api.post_error(
            f"invocation/{invocation.request_id}/error", "Runtime.InvalidEvent", "not JSON"
        )
        return
    clock = now_ms or (lambda: int(proxy.clock().timestamp() * 1000))
    context = LambdaContext(invocation, clock)
    stream = api.response(invocation.request_id)
    try:
        response = proxy.handle(event, context, stream=stream)
        if not stream.started:  # an answer in one piece: the same prelude, then the body
            stream.start(response.get("statusCode") or 200, response.get("headers") or {})
            stream.write(_body_bytes(response))
    except Exception as exc:  # Proxy.handle never raises; this is the loop's own failure
        if not stream.started:
            api.post_error(
                f"invocation/{invocation.request_id}/error", "Runtime.Unhandled", type(exc).__name__
            )
            return
        stream.finish(("Runtime.Unhandled", type(exc).__name__))
        return
    stream.finish()


def run(proxy=None, api: RuntimeAPI | None = None, *, invocations: int | None = None) -> None:
    """The loop Lambda runs for the life of the execution environment."""
    api = api or RuntimeAPI()
    if proxy is None:
        try:
            from .handler import get_proxy

            proxy = get_proxy()
        except Exception as exc:  # a configuration error: Lambda reports it and retries
            api.post_error("init/error", "Runtime.InitError", f"{type(exc).__name__}: {exc}")
            raise SystemExit(1) from None
    served = 0
    while invocations is None or served < invocations:
        serve_one(proxy, api)
        served += 1


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # one log line per request, at once
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
