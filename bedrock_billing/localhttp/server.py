"""The HTTP/1.1 machinery both local servers stand on (the proxy's and the fake Bedrock's).

- :class:`LocalServer`: a threading server that remembers its open connections, so stop
  can cut keep-alive clients, drops tracebacks for clients that hang up, and serves HTTPS
  when given an ``ssl.SSLContext`` (the handshake runs in the request's own thread).
- :class:`LocalHandler`: reads request bodies as strictly as API Gateway does (one
  numeric ``Content-Length``, or ``Transfer-Encoding: chunked``, both bounded) and answers
  every error of its own, unknown methods included, as JSON (``{"message": ...}`` with
  ``x-amzn-ErrorType``, the shape both API Gateway and Bedrock use) instead of the
  standard library's HTML page.

Standard library only.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A client that resets or drops its connection mid-request (a test that gives up, curl
# interrupted), or fails its TLS handshake, is ordinary for a local server: not worth a
# traceback on stderr.
_DISCONNECTS = (ConnectionError, TimeoutError, ssl.SSLError)
_DIGITS = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")
_MAX_LINE = 4096  # a chunk-size or trailer line
_MAX_TRAILERS = 100
HANDSHAKE_TIMEOUT = 10.0  # seconds; a client that stalls its TLS handshake holds a thread


class RequestError(Exception):
    """A request the server refuses before any application code sees it."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


class LocalServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with connection tracking and optional TLS."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many concurrent clients in the concurrency tests

    def __init__(self, address, handler, ssl_context: ssl.SSLContext | None = None):
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.ssl_context = ssl_context
        super().__init__(address, handler)
        if ssl_context is not None:
            # Accepting returns TLS sockets whose handshake waits for the handler's thread.
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def track(self, conn: socket.socket) -> None:
        with self.connections_lock:
            self.connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self.connections_lock:
            self.connections.discard(conn)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], _DISCONNECTS):
            return
        super().handle_error(request, client_address)


class LocalHandler(BaseHTTPRequestHandler):
    """Base handler: connection tracking, the TLS handshake, strict body reading, JSON
    errors. Subclasses define ``do_<METHOD>`` and ``max_body``."""

    protocol_version = "HTTP/1.1"
    # Streams flush one small write per event; with Nagle on, each waits ~40 ms for the
    # client's delayed ACK.
    disable_nagle_algorithm = True
    max_body = 64 * 1024 * 1024
    server: LocalServer

    def setup(self) -> None:
        self.server.track(self.request)
        try:
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(HANDSHAKE_TIMEOUT)
                self.request.do_handshake()
                self.request.settimeout(None)
            super().setup()
        except BaseException:
            self.server.untrack(self.request)
            raise

    def finish(self) -> None:
        self.server.untrack(self.request)
        try:
            super().finish()
        except OSError:  # the client went away with data still buffered for it
            pass

    def log_message(self, format, *args) -> None:  # noqa: A002 - the records say enough
        pass

    # ---- request bodies

    def read_body(self) -> bytes:
        """The request's body, or :class:`RequestError` (and the connection marked to
        close: what is left of the body cannot be skipped reliably)."""
        try:
            return self._read_body()
        except RequestError:
            self.close_connection = True
            raise

    def _read_body(self) -> bytes:
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            coding = ",".join(encodings).strip().lower()
            if coding != "chunked":
                raise RequestError(
                    400, "ValidationException", f"unsupported Transfer-Encoding: {coding[:40]}"
                )
            if lengths:  # RFC 9112 6.3: both at once is how requests are smuggled
                raise RequestError(
                    400,
                    "ValidationException",
                    "a request may not carry both Content-Length and Transfer-Encoding",
                )
            return self._read_chunked()
        if not lengths:
            return b""
        values = {value.strip() for value in lengths}
        if len(values) != 1 or not _DIGITS.fullmatch(next(iter(values))):
            raise RequestError(
                400, "ValidationException", "Content-Length must be one non-negative integer"
            )
        length = int(next(iter(values)))
        if length > self.max_body:
            raise RequestError(
                413, "ValidationException", f"the body exceeds {self.max_body} bytes"
            )
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise RequestError(400, "ValidationException", "the body ended early")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise RequestError(400, "ValidationException", "malformed chunked body")
            size = int(match.group(1), 16)
            if size == 0:
                break
            total += size
            if total > self.max_body:
                raise RequestError(
                    413, "ValidationException", f"the body exceeds {self.max_body} bytes"
                )
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise RequestError(400, "ValidationException", "malformed chunked body")
            parts.append(data)
        for _ in range(_MAX_TRAILERS):  # trailers are read and dropped
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line or len(line) > _MAX_LINE:
                break
        raise RequestError(400, "ValidationException", "malformed chunked body trailer")

    # ---- answers

    def send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        """One JSON answer with its length; nothing after the headers for HEAD."""
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self.send_bytes(status, {"Content-Type": "application/json", **(headers or {})}, payload)

    def send_bytes(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def send_request_error(self, err: RequestError, headers: dict[str, str] | None = None):
        extra = {"x-amzn-ErrorType": err.error_type, **(headers or {})}
        self.send_json(err.status, {"message": err.message}, extra)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The standard library's own refusals (bad request line, headers too long, a
        method no ``do_`` serves) as JSON; an unknown method is 405, not 501."""
        # The standard library's messages quote the request line: none of it is echoed.
        self.close_connection = True
        if code == 501:  # http.server's "Unsupported method"
            code, error_type, text = 405, "MethodNotAllowedException", "method not allowed"
        else:
            error_type = "ValidationException" if code < 500 else "InternalServerException"
            text = self.responses.get(code, ("error",))[0].lower()
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # never answer in HTTP/0.9's header-less form
        self.send_json(code, {"message": text}, {"x-amzn-ErrorType": error_type})


class BackgroundServer:
    """A :class:`LocalServer` in a daemon thread on loopback: ``url``, ``start()``,
    ``stop()`` (idempotent: no new requests, every connection cut, the port free at once)
    and the ``with`` statement. Subclasses name the thread and build the server.

    ``tls`` (:class:`~bedrock_billing.localhttp.tls.TLSFiles`) serves HTTPS instead of HTTP.
    """

    thread_name = "local-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls=None) -> None:
        self.host, self.port, self.tls = host, port, tls
        self._server: LocalServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self, address, ssl_context: ssl.SSLContext | None) -> LocalServer:
        raise NotImplementedError

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self):
        if self._server is None:
            context = self.tls.server_context() if self.tls is not None else None
            self._server = self._make_server((self.host, self.port), context)
            self.port = self._server.server_address[1]
            self._thread = serve_in_background(self._server, f"{self.thread_name}:{self.port}")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_serving(server, self._thread)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_in_background(server, name: str) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread (a short poll, so stop is quick)."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: LocalServer, thread: threading.Thread | None) -> None:
    """Stop a server started by ``serve_in_background``: no new requests, the listening
    socket closed, keep-alive clients cut (they would hold a handler thread), and the
    serving thread joined."""
    server.shutdown()
    server.server_close()
    server.close_connections()
    if thread is not None:
        thread.join(timeout=5)
