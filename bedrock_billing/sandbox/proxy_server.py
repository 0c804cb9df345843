"""The proxy on a local HTTP or HTTPS port: each request becomes an API Gateway (payload
1.0) event for the real handler, as API Gateway builds it (path as sent, query string,
client address), and a streamed answer goes out with ``Transfer-Encoding: chunked``, each
event as it arrives.

In process::

    with ProxyServer(proxy) as server:      # or ProxyServer(config=..., log_sink=...)
        requests.post(server.url + "/prod/bedrock", ...)

As a process (prints ``{"url": "http://127.0.0.1:PORT"}`` as its first stdout line; with
``--tls-dir DIR``, ``https://`` and the ``ca_bundle`` to trust)::

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
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from bedrock_billing.localhttp.server import (
    BackgroundServer,
    LocalHandler,
    LocalServer,
    RequestError,
)
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.logline import print_sink

MAX_READ = 64 * 1024 * 1024  # the handler applies the configured bound; this guards memory


def _split_target(target: str) -> tuple[str, str]:
    """(path, query) of a request target, the path left percent-encoded as sent."""
    if target.startswith(("http://", "https://")):  # absolute-form: keep path and query
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path.partition("#")[0] or "/", query.partition("#")[0]


def _query_parameters(query: str) -> tuple[dict | None, dict | None]:
    """API Gateway's ``queryStringParameters`` (the last value of a repeated name) and
    ``multiValueQueryStringParameters``, decoded; both None when there is no query."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def to_event(
    method: str,
    raw_path: str,
    headers,
    body: bytes,
    stage: str = "local",
    source_ip: str = "127.0.0.1",
) -> dict:
    """An API Gateway REST proxy event (payload format 1.0) for one HTTP request: the path
    as the client sent it (still percent-encoded), the query string decoded into both
    parameter maps, the client's address as ``requestContext.identity.sourceIp``."""
    path, query = _split_target(raw_path)
    single_query, multi_query = _query_parameters(query)
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
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": stage,
            "path": path,
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }


class _Handler(LocalHandler):
    max_body = MAX_READ
    server: _Server

    def _serve(self) -> None:
        try:
            body = self.read_body()
        except RequestError as err:
            self.send_request_error(err)
            return
        event = to_event(
            self.command, self.path, self.headers, body, source_ip=self.client_address[0]
        )
        writer = StreamWriter(self)
        response = self.server.proxy.handle(event, None, stream=writer)
        if writer.started:  # the answer went out as it came; the returned dict is moot
            writer.end()
            return
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self.send_bytes(response["statusCode"], response.get("headers") or {}, data)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve  # noqa: N815


class StreamWriter:
    """What the proxy streams into: ``start(status, headers)`` once, then ``write(data)``
    per event, already encoded for the wire. Sent with ``Transfer-Encoding: chunked``, one
    HTTP chunk per write, flushed, so clients see each event as it comes."""

    def __init__(self, handler: LocalHandler):
        self.handler = handler
        self.started = False
        self.broken = False

    def start(self, status: int, headers: dict[str, str]) -> None:
        if self.started:
            return
        self.started = True
        h = self.handler
        try:
            h.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    h.send_header(name, value)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.flush()
        except OSError:
            self._broke()

    def write(self, data: bytes) -> None:
        if not data or self.broken or self.handler.command == "HEAD":
            return
        try:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()
        except OSError:  # the client hung up; the proxy still meters what it generated
            self._broke()

    def end(self) -> None:
        if self.broken or self.handler.command == "HEAD":
            return
        try:
            self.handler.wfile.write(b"0\r\n\r\n")
            self.handler.wfile.flush()
        except OSError:
            self._broke()

    def _broke(self) -> None:
        self.broken = True
        self.handler.close_connection = True


class _Server(LocalServer):
    def __init__(self, address, proxy: Proxy, ssl_context=None):
        self.proxy = proxy
        super().__init__(address, _Handler, ssl_context)


class ProxyServer(BackgroundServer):
    """The proxy on ``127.0.0.1`` (port 0: a free one), in a daemon thread.

    ``tls`` (:class:`~bedrock_billing.localhttp.tls.TLSFiles`) serves HTTPS instead of HTTP:
    what the AWS SDKs need before they send a Bearer token (``url`` is then ``https://``).
    """

    def __init__(
        self,
        proxy: Proxy | None = None,
        *,
        config: ProxyConfig | None = None,
        log_sink=None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls=None,
    ):
        super().__init__(host, port, tls)
        self.proxy = proxy or Proxy(config, log_sink=log_sink or print_sink)

    thread_name = "proxy-server"

    def _make_server(self, address, ssl_context) -> _Server:
        return _Server(address, self.proxy, ssl_context)

    @property
    def endpoint(self) -> str:
        """The spec's endpoint shape: ``<api>/prod/bedrock``."""
        return self.url + "/prod/bedrock"


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
    parser.add_argument(
        "--tls-dir", help="serve HTTPS with a certificate made into this folder (ca.pem)"
    )
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
    tls = None
    if args.tls_dir:
        from bedrock_billing.localhttp.tls import make_tls_files

        tls = make_tls_files(args.tls_dir)
    server = ProxyServer(
        config=ProxyConfig.from_env(), log_sink=sink, host=args.host, port=args.port, tls=tls
    ).start()
    announce = {"url": server.url}
    if tls is not None:
        announce["ca_bundle"] = str(tls.ca_bundle)
    print(json.dumps(announce), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):  # a timed wait lets the signal handlers run
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
