"""moto's server on loopback, with each request applied atomically.

DynamoDB applies a conditional write to an item atomically. moto's server checks the
condition and writes without a lock, so on a loaded machine two threads can both pass a
limit (seen: 101 admitted at a daily limit of 100, 2 runs in 4 with the CPU busy). Running
moto's requests one at a time restores the service's guarantee in the emulator; whatever
sits in front of it (the proxies, their threads and processes) stays fully concurrent.
This is the emulator's lock, never the proxy's.
"""

from __future__ import annotations

import threading
from typing import Any


class _OneAtATime:
    """WSGI middleware: one request inside moto at a time, response read under the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class MotoServer:
    """moto's server in a daemon thread: ``start()``, ``url``, ``get_host_and_port()``,
    ``stop()`` (which also closes the listening socket, so the port is free at once)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoServer:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        return self

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
