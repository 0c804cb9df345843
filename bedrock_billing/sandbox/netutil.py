"""Loopback checks: the sandbox accepts any token and dummy credentials, so it listens on
loopback only. (The servers' own machinery is in ``bedrock_billing.localhttp``.)"""

from __future__ import annotations

import ipaddress

from ..core.errors import InvalidInput


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_host(host: str, what: str = "the sandbox") -> str:
    """The IPv4 loopback address to bind for ``host``; anything else is a usage error.

    The sandbox accepts any token and dummy credentials, and the console acts with the
    operator's own credentials: neither may be reachable from another machine.
    """
    if not is_loopback_host(host):
        raise InvalidInput(
            f"--host {host!r} is not a loopback address: {what} listens on 127.x only"
        )
    if host == "localhost":
        return "127.0.0.1"
    if ipaddress.ip_address(host).version != 4:
        raise InvalidInput(f"--host {host!r}: use an IPv4 loopback address such as 127.0.0.1")
    return host
