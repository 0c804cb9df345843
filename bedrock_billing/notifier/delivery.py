"""One webhook POST, to the address that was checked (no DNS rebinding between check and
connect), and the retrying loop around it."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..core.webhooks import MAX_ATTEMPTS, backoff, is_public, retryable

TIMEOUT = 5.0  # seconds per attempt


class Refused(Exception):
    """The URL resolves to an address the policy refuses: final, never retried."""


def resolve_checked(host: str, port: int, allow_private: bool) -> str:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        bad = [a for a in addresses if not is_public(a)]
        if bad:
            raise Refused(f"{host} resolves to a private address ({bad[0]})")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout, context=None):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def http_post(
    url: str, body: bytes, headers: dict[str, str], timeout: float, allow_private: bool
) -> int:
    """POST ``body``; the answer's status. Raises Refused, OSError or a timeout."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    address = resolve_checked(parts.hostname or "", port, allow_private)
    if https:
        conn = _PinnedHTTPS(parts.hostname, port, address, timeout, ssl.create_default_context())
    else:
        conn = _PinnedHTTP(parts.hostname, port, address, timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(65536)
        return response.status
    finally:
        conn.close()


Post = Callable[[str, bytes, dict, float, bool], int]


@dataclass
class Outcome:
    delivered: bool
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    waits: list[float] = field(default_factory=list)


def deliver(
    url: str,
    body: bytes,
    headers_for: Callable[[], dict[str, str]],
    *,
    allow_private: bool = False,
    post: Post = http_post,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    timeout: float = TIMEOUT,
    backoff_base: float = 1.0,
) -> Outcome:
    """Attempts until a 2xx, a final answer, a refused address or ``max_attempts``; each
    attempt is signed afresh (``headers_for``) so its timestamp is current."""
    outcome = Outcome(delivered=False)
    for attempt in range(1, max_attempts + 1):
        outcome.attempts = attempt
        status = None
        try:
            status = post(url, body, headers_for(), timeout, allow_private)
            outcome.last_status, outcome.last_error = status, None
        except Refused as exc:
            outcome.last_status, outcome.last_error = None, str(exc)
            return outcome
        except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
            outcome.last_status = None
            outcome.last_error = type(exc).__name__ if not str(exc) else str(exc)[:200]
        if status is not None and 200 <= status < 300:
            outcome.delivered = True
            return outcome
        if not retryable(status) or attempt == max_attempts:
            return outcome
        wait = backoff(attempt, backoff_base)
        outcome.waits.append(wait)
        sleep(wait)
    return outcome
