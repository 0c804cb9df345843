"""The customer portal: ``GET {prefix}/portal`` (one static page, its script and style) and
the JSON endpoints it reads, ``GET {prefix}/v1/account``, ``/v1/account/usage``,
``/v1/account/invoices`` and ``/v1/account/invoices/{id}``.

Served by the proxy itself on its one pipeline (a route, this adapter for the answers and
refusals, the proxy's Bearer-token authentication): no Bedrock call, no admission, no
metering, no usage log line for an answer, and no requests-per-minute slot taken (a
customer looking at their usage must not lose model calls; docs/decisions.md). The page
and its assets are files of this package (``proxy/static``), sent under a strict
Content-Security-Policy: nothing inline, nothing from another origin.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import ProxyError
from ..events import Request, error_response
from . import PORTAL_ACCOUNT as ACCOUNT  # the route markers (Route.local), from the table
from . import PORTAL_ASSET as ASSET
from . import PORTAL_INVOICES as INVOICES
from . import PORTAL_PAGE as PAGE
from . import PORTAL_REDIRECT as REDIRECT
from . import PORTAL_USAGE as USAGE
from .base import Adapter, body_response, dumps

STATIC = Path(__file__).resolve().parent.parent / "static"

ASSETS = {"portal.js": "text/javascript; charset=utf-8", "portal.css": "text/css; charset=utf-8"}

# The page loads its script, style and data from its own origin only; nothing inline (no
# inline script or style, no eval), no frames, no form posts, no <base> rewriting.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=8)
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


class PortalAdapter(Adapter):
    """Answers and refusals of the portal's routes: JSON ``{"error": {...}}`` refusals
    (as the first version's routes), 401 for a missing or wrong token."""

    name = "portal"

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        return error_response(err, request_id, {**headers, **_data_headers()})

    def json(self, body: dict, request_id: str, headers: dict[str, str]) -> dict:
        out = {**headers, **_data_headers(), "Content-Type": "application/json"}
        out["X-Request-Id"] = request_id
        return body_response(200, dumps(body).encode(), out)

    def page(self, headers: dict[str, str]) -> dict:
        out = {**headers, **_static_headers(PAGE_CSP), "Content-Type": "text/html; charset=utf-8"}
        return body_response(200, _static("index.html"), out)

    def asset(self, name: str, headers: dict[str, str]) -> dict:
        if name not in ASSETS:  # the route admits only these names; kept as a guard
            raise ProxyError(404, "not_found", "no such file")
        out = {**headers, **_static_headers(PAGE_CSP), "Content-Type": ASSETS[name]}
        return body_response(200, _static(name), out)

    def redirect(self, headers: dict[str, str]) -> dict:
        """``.../portal/`` to ``.../portal``: the page's relative links assume no slash. The
        Location is relative, so it is right under any stage or base path."""
        out = {**headers, **SECURITY, "Location": "../portal", "Cache-Control": "no-store"}
        return {"statusCode": 308, "headers": out, "body": "", "isBase64Encoded": False}


def _data_headers() -> dict[str, str]:
    # The caller's own data: never stored by a shared cache or the browser's.
    return {**SECURITY, "Content-Security-Policy": DATA_CSP, "Cache-Control": "no-store"}


def _static_headers(csp: str) -> dict[str, str]:
    return {**SECURITY, "Content-Security-Policy": csp, "Cache-Control": "no-cache"}


PORTAL = PortalAdapter()


def serve(proxy, marker: str, request: Request, params: dict[str, str], headers: dict) -> dict:
    """One portal request; ``proxy`` gives the authenticator, the clients and the clock."""
    if marker == PAGE:
        return PORTAL.page(headers)
    if marker == ASSET:
        return PORTAL.asset(params.get("asset", ""), headers)
    if marker == REDIRECT:
        return PORTAL.redirect(headers)
    # The token's own customer, whatever the URL says; a suspended customer may still read
    # their account and invoices (docs/decisions.md), never call a model.
    customer = proxy.auth.authenticate(PORTAL.token(request), allow_suspended=True)
    reader = proxy.account_reader()
    cid = customer.customer_id
    if marker == ACCOUNT:
        body = reader.account(cid, proxy.clock())
    elif marker == USAGE:
        from ..account import parse_period

        body = reader.usage(cid, parse_period(request.query, proxy.clock()))
    elif marker == INVOICES:
        body = reader.invoices(cid)
    else:
        body = reader.invoice(cid, params.get("invoice", ""))
    return PORTAL.json(body, request.request_id, headers)
