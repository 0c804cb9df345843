"""Browser origins (CORS): the one rule for what an origin looks like, per customer lists.

The deployment's list (``deploy --cors-origin``) answers preflights; a customer's own list
(``update-limits --allowed-origins``, the customer item's ``allowed_origins``) is checked on
the real request, after the token says whose it is: a preflight carries no token
(docs/proxy.md, "CORS"). An origin is ``scheme://host[:port]``, compared without a trailing
slash and with the scheme and host lower-cased, as browsers send them.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
MAX_ORIGINS = 50
CLEAR_WORDS = ("any", "all", "unlimited", "none")


def normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def valid_origin(origin: str) -> bool:
    return bool(ORIGIN_RE.match(origin))


def parse_origin_list(values: list[str] | str | None) -> list[str] | None:
    """An operator's list of origins (comma-separated text or a list), normalised; None or
    'any' = no list of the customer's own (the deployment's applies)."""
    if values is None:
        return None
    items = values.split(",") if isinstance(values, str) else list(values)
    out: list[str] = []
    for raw in items:
        for part in str(raw).split(","):
            if not part.strip():
                continue
            if part.strip().lower() in CLEAR_WORDS:
                return None
            origin = normalise_origin(part)
            if not valid_origin(origin):
                raise InvalidInput(
                    f"invalid origin {part.strip()[:60]!r}: give scheme://host[:port], "
                    "no '*', no path"
                )
            if origin not in out:
                out.append(origin)
    if len(out) > MAX_ORIGINS:
        raise InvalidInput(f"at most {MAX_ORIGINS} origins per customer")
    return out or None


def read_origins(value: object) -> tuple[tuple[str, ...] | None, str | None]:
    """A stored ``allowed_origins`` (strict): (origins, None) or (None, problem)."""
    if value is None:
        return None, None
    if not isinstance(value, list) or not value:
        return None, "allowed_origins is not a list of origins (L of S)"
    for origin in value:
        if not isinstance(origin, str) or not valid_origin(normalise_origin(origin)):
            return None, "allowed_origins holds something that is not an origin"
    return tuple(normalise_origin(o) for o in value), None


def origin_allowed(origin: str | None, allowed: tuple[str, ...] | None) -> bool:
    """A request's ``Origin`` against a customer's list: no list, or no Origin header (not a
    browser's cross-origin request), passes."""
    if allowed is None or origin is None:
        return True
    return normalise_origin(origin) in allowed
