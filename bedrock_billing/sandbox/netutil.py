"""Small network helpers shared by the sandbox's local servers: loopback checks, a quiet
error hook for clients that hang up, and the bookkeeping that lets a server close every
connection it accepted when it stops."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading

from ..core.errors import InvalidInput

# A client that resets or drops its connection mid-request (a test that gives up, curl
# interrupted) is ordinary for a local server: not worth a traceback on stderr.
_DISCONNECTS = (ConnectionError, TimeoutError)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_host(host: str) -> str:
    """The IPv4 loopback address to bind for ``host``; anything else is a usage error.

    The sandbox accepts any token and dummy credentials: it must never be reachable from
    another machine.
    """
    if not is_loopback_host(host):
        raise InvalidInput(
            f"--host {host!r} is not a loopback address: the sandbox listens on 127.x only"
        )
    if host == "localhost":
        return "127.0.0.1"
    if ipaddress.ip_address(host).version != 4:
        raise InvalidInput(f"--host {host!r}: use an IPv4 loopback address such as 127.0.0.1")
    return host


class TrackedServerMixin:
    """For ``socketserver`` servers: remembers open connections so ``close_connections``
    can cut keep-alive clients at stop, and drops tracebacks for clients that hang up."""

    def _track_init(self) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

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
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], _DISCONNECTS):
            return
        super().handle_error(request, client_address)  # type: ignore[misc]


def serve_in_background(server, name: str) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread (a short poll, so stop is quick)."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server, thread: threading.Thread | None) -> None:
    """Stop a TrackedServerMixin server started by ``serve_in_background``: no new
    requests, the listening socket closed, keep-alive clients cut (they would hold a
    handler thread), and the serving thread joined."""
    server.shutdown()
    server.server_close()
    server.close_connections()
    if thread is not None:
        thread.join(timeout=5)
