"""The proxy on a local HTTP port: each request becomes an API Gateway (payload 1.0) event
for the real handler, and a streamed answer is served as Server-Sent Events
(``data: {...}`` lines ending ``data: [DONE]``) or event-stream frames (the Bedrock Runtime
routes) as the proxy produces them.

In process::

    with ProxyServer(proxy) as server:      # or ProxyServer(config=..., log_sink=...)
        requests.post(server.url + "/prod/bedrock", ...)

As a process (prints ``{"url": "http://127.0.0.1:PORT"}`` as its first stdout line)::

    python -m bedrock_billing.sandbox.proxy_server --port 0 --stage test \\
        --dynamodb-endpoint http://127.0.0.1:5000 --bedrock-endpoint http://127.0.0.1:5001

Lives in the sandbox, not in the proxy package, so the Lambda zip stays lean.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.logline import print_sink
from bedrock_billing.sandbox.netutil import TrackedServerMixin, serve_in_background, stop_serving

MAX_READ = 64 * 1024 * 1024  # the handler applies the configured bound; this guards memory


def to_event(method: str, raw_path: str, headers, body: bytes, stage: str = "local") -> dict:
    """An API Gateway REST proxy event (payload format 1.0) for one HTTP request."""
    parts = urlsplit(raw_path)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers.items():
        single[name] = value
        multi.setdefault(name, []).append(value)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": stage,
            "path": parts.path,
            "httpMethod": method,
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # SSE: one small write per chunk
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_READ:
            self._send(
                413, {"Content-Type": "application/json"}, b'{"error":{"code":"body_too_large"}}'
            )
            return
        body = self.rfile.read(length) if length else b""
        event = to_event(self.command, self.path, self.headers, body)
        stream = _Stream(self)
        response = self.server.proxy.handle(event, None, stream=stream)
        if stream.started:
            stream.end()
            return
        status = response["statusCode"]
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self._send(status, response.get("headers") or {}, data)

    def _send(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format, *args) -> None:  # noqa: A002 - the proxy logs instead
        pass


class _Stream:
    """The proxy's streaming writer: status and headers once, then each event as the proxy
    encoded it (event-stream frames, SSE lines), sent in chunked transfer encoding and
    flushed, so a client sees every event as it comes."""

    def __init__(self, handler: _Handler):
        self.handler = handler
        self.started = False

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.started = True
        h = self.handler
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

    def write(self, data: bytes) -> None:
        if data:
            out = self.handler.wfile
            out.write(b"%x\r\n" % len(data) + data + b"\r\n")
            out.flush()

    def end(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()


class _Server(TrackedServerMixin, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many concurrent clients in the concurrency tests

    def __init__(self, address, proxy: Proxy):
        self.proxy = proxy
        self._track_init()
        super().__init__(address, _Handler)


class ProxyServer:
    """The proxy on ``127.0.0.1`` (port 0: a free one), in a daemon thread."""

    def __init__(
        self,
        proxy: Proxy | None = None,
        *,
        config: ProxyConfig | None = None,
        log_sink=None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.proxy = proxy or Proxy(config, log_sink=log_sink or print_sink)
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The spec's endpoint shape: ``<api>/prod/bedrock``."""
        return self.url + "/prod/bedrock"

    def start(self) -> ProxyServer:
        if self._server is None:
            self._server = _Server((self.host, self.port), self.proxy)
            self.port = self._server.server_address[1]
            self._thread = serve_in_background(self._server, f"proxy-server:{self.port}")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_serving(server, self._thread)
            self._thread = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _file_sink(path: str):
    lock = threading.Lock()

    def sink(record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(line)

    return sink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Bedrock proxy on a local port.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stage", help="sets BEDROCK_BILLING_STAGE")
    parser.add_argument("--table-prefix", help="sets BEDROCK_BILLING_TABLE_PREFIX")
    parser.add_argument("--region", help="sets AWS_REGION")
    parser.add_argument("--dynamodb-endpoint", help="sets AWS_ENDPOINT_URL_DYNAMODB")
    parser.add_argument("--bedrock-endpoint", help="sets AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
    parser.add_argument("--log-file", help="append log lines here instead of stdout")
    args = parser.parse_args(argv)
    for value, name in (
        (args.stage, "BEDROCK_BILLING_STAGE"),
        (args.table_prefix, "BEDROCK_BILLING_TABLE_PREFIX"),
        (args.region, "AWS_REGION"),
        (args.dynamodb_endpoint, "AWS_ENDPOINT_URL_DYNAMODB"),
        (args.bedrock_endpoint, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
    ):
        if value is not None:
            os.environ[name] = value
    sink = _file_sink(args.log_file) if args.log_file else print_sink
    server = ProxyServer(
        config=ProxyConfig.from_env(), log_sink=sink, host=args.host, port=args.port
    ).start()
    print(json.dumps({"url": server.url}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):  # a timed wait lets the signal handlers run
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
