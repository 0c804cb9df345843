"""What a console view receives and returns (:class:`Request`, :class:`Response`), and the
security headers every answer carries. No I/O: the server and the views both import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .security import Session

STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
# Pages load only the console's own script and stylesheet; nothing from elsewhere, no
# inline script or style, no framing, forms post only to the console.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An invoice document carries its own <style> (the same file `invoice --format html`
# writes) and no script at all.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The first URL carries the secret: no referrer leaves the console (same-origin still
    # sends it, and keeps the Origin header of a form post, which no-referrer turns to null).
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # a page may show a token once
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_FORM = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    form: dict[str, list[str]] = field(default_factory=dict)
    session: Session | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def field(self, name: str, default: str | None = None) -> str | None:
        values = self.form.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def html(cls, text: str, status: int = 200, csp: str = PAGE_CSP) -> Response:
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": csp}
        return cls(status, text.encode("utf-8"), headers)

    @classmethod
    def redirect(cls, location: str, **params: str) -> Response:
        target = location + ("?" + urlencode(params) if params else "")
        return cls(303, b"", {"Location": target})


