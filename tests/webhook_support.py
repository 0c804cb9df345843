"""A loopback webhook receiver for tests: records each POST and answers from a script."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HANG = "hang"  # a scripted answer: accept the request and never answer it

DOCS = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"


def documented_verifier():
    """The verifier exactly as docs/webhooks.md prints it (the receiver's side)."""
    text = DOCS.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 11, "the documented verifier must stay short"
    namespace: dict = {}
    exec(compile(block, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace["verify"]


class Receiver:
    def __init__(self, script: list | None = None, default: int = 200):
        self.script = list(script or [])
        self.default = default
        self.received: list[tuple[dict, bytes]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append((dict(self.headers), body))
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer == HANG:
                    receiver._release.wait(30)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
