"""A stand-in for Lambda's Runtime API on loopback, for the proxy's streaming entry point.

It hands out queued invocations on ``GET /2018-06-01/runtime/invocation/next`` (with the
request id, deadline and function ARN headers Lambda sends) and records each response:
its request headers, every HTTP chunk of a streamed body as it arrives (so a test can see
chunks leave one by one), and the trailers. Errors posted to ``/error`` are recorded too.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() per chunk
    trailers: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class RuntimeStandIn:
    def __init__(self) -> None:
        self.invocations: queue.Queue[tuple[str, int, bytes]] = queue.Queue()
        self.posted: dict[str, Posted] = {}
        self.errors: list[tuple[str, dict]] = []
        # request id -> chunks after which the stand-in drops the response's connection
        self.hang_up_after: dict[str, int] = {}
        self.changed = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"{PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                request_id, deadline_ms, body = stand_in.invocations.get(timeout=30)
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:test-proxy",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path.endswith("/error"):
                    length = int(headers.get("content-length") or 0)
                    stand_in.errors.append((self.path, json.loads(self.rfile.read(length))))
                    self._accepted()
                    return
                posted = Posted(self.path, headers)
                with stand_in.changed:
                    stand_in.posted[self.path.split("/")[-2]] = posted
                if headers.get("transfer-encoding") == "chunked":
                    if not self._read_chunks(posted):
                        return
                else:
                    length = int(headers.get("content-length") or 0)
                    posted.chunks.append(self.rfile.read(length))
                with stand_in.changed:
                    posted.complete = True
                    stand_in.changed.notify_all()
                self._accepted()

            def _read_chunks(self, posted: Posted) -> bool:
                """False when the stand-in hung up on purpose."""
                limit = stand_in.hang_up_after.get(posted.path.split("/")[-2])
                while True:
                    if limit is not None and len(posted.chunks) >= limit:
                        self.close_connection = True
                        self.connection.close()
                        with stand_in.changed:
                            posted.complete = True
                            stand_in.changed.notify_all()
                        return False
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    data = self.rfile.read(size)
                    self.rfile.readline()
                    with stand_in.changed:
                        posted.chunks.append(data)
                        posted.arrivals.append(time.monotonic())
                        stand_in.changed.notify_all()
                while True:  # trailers, up to the empty line
                    line = self.rfile.readline().decode().strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    posted.trailers[name.strip().lower()] = value.strip()
                return True

            def _accepted(self) -> None:
                self.send_response(202)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RuntimeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, request_id: str, event: dict, deadline_ms: int) -> None:
        self.invocations.put((request_id, deadline_ms, json.dumps(event).encode()))

    def wait_for_chunks(self, request_id: str, count: int, timeout: float = 10.0) -> bool:
        """True once the response of ``request_id`` has at least ``count`` chunks."""
        with self.changed:
            return self.changed.wait_for(
                lambda: request_id in self.posted
                and len(self.posted[request_id].chunks) >= count,
                timeout,
            )
