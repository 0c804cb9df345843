"""Webhook signatures (Stripe's scheme), the URL policy and the retry schedule. Pure.

``Bedrock-Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256("<t>.<raw body>")>`` under
the customer's signing secret; docs/webhooks.md has the ten-line verifier a receiver uses.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

from .errors import InvalidInput

SIGNATURE_HEADER = "Bedrock-Billing-Signature"
EVENT_ID_HEADER = "Bedrock-Billing-Event-Id"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds a receiver accepts between t and its clock

# Attempts and the waits between them: 5xx, timeouts and refused connections are retried,
# 2xx ends it, any other answer (4xx) is final. Bounded: 1+2+4+8 = 15 s within one run.
MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0


def backoff(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return base * (2 ** (attempt - 1))


def retryable(status: int | None) -> bool:
    """``None`` is a timeout or a connection error."""
    return status is None or status >= 500 or status == 429


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(24)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance=DEFAULT_TOLERANCE) -> bool:
    """What docs/webhooks.md's verifier does; the tests use that one, not this."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now - t) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


def check_url(url: str, allow_private: bool = False) -> str:
    """HTTPS only (``http://`` too with ``allow_private``); a literal private address is
    refused here, names are resolved and checked again at each delivery."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(f"webhook url must be an https:// URL, not {url[:60]!r}")
    if parts.username or parts.password:
        raise InvalidInput("webhook url must not carry a user name or password")
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and not allow_private and not is_public(str(address)):
        raise InvalidInput(f"webhook url points at a private address ({host})")
    if not allow_private and host.lower() in ("localhost", "localhost.localdomain"):
        raise InvalidInput("webhook url points at a loopback address (localhost)")
    return url


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
