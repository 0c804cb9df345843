"""Who may drive the console, checked on every request before any page code runs.

- **A one-time secret** (as Jupyter's token): the printed URL carries ``?secret=...``; the
  first request that presents it gets a session cookie (HttpOnly, SameSite=Strict) and the
  secret stops working, so a URL left in a shell history, a log or a browser's history
  opens nothing later. Without a valid session cookie every URL answers 403.
- **The Host header** must name the address the console listens on (``127.0.0.1:8700`` or
  ``localhost:8700``): a page whose own DNS name was rebound to 127.0.0.1 sends its own
  name, and is refused (DNS rebinding).
- **State changes are POSTs with a CSRF token** tied to the session (a form field), and a
  POST whose ``Origin`` or ``Sec-Fetch-Site`` says it came from another site is refused
  even before the token is compared.

Standard library only: nothing here knows about pages or AWS.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused (403): said on the page, never with any secret in it."""

    reason: str


@dataclass
class Session:
    sid: str
    csrf: str


class Guard:
    """The console's secret, its sessions and the checks of one request."""

    def __init__(self, host: str, port: int, secret: str | None = None):
        self.host = host
        self.port = port
        self._secret: str | None = secret or secrets.token_urlsafe(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # ---- what the console prints

    @property
    def cookie_name(self) -> str:
        # Cookies are not kept apart by port: two consoles on one host need two names.
        return f"bb_console_{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def login_url(self) -> str:
        if self._secret is None:
            raise RuntimeError("the one-time secret was already used")
        return f"{self.origin}/?secret={self._secret}"

    def allowed_hosts(self) -> set[str]:
        names = {self.host, "localhost"} if self.host.startswith("127.") else {self.host}
        return {f"{name}:{self.port}" for name in names}

    def allowed_origins(self) -> set[str]:
        return {f"http://{host}" for host in self.allowed_hosts()}

    # ---- the checks

    def check_host(self, host_header: str | None) -> Refusal | None:
        if (host_header or "").strip().lower() not in self.allowed_hosts():
            return Refusal("this console answers only at its own address (Host header)")
        return None

    def redeem(self, presented: str) -> Session | Refusal:
        """Exchange the one-time secret for a new session (once)."""
        with self._lock:
            expected = self._secret
            if expected is None or not hmac.compare_digest(
                presented.encode("utf-8", "replace"), expected.encode()
            ):
                return Refusal("this secret is wrong or was already used")
            self._secret = None
            session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
            self._sessions[session.sid] = session
            return session

    def session_for(self, cookie_header: str | None) -> Session | None:
        if not cookie_header:
            return None
        try:
            jar = SimpleCookie(cookie_header)
        except CookieError:
            return None
        morsel = jar.get(self.cookie_name)
        if morsel is None:
            return None
        presented = morsel.value.encode("utf-8", "replace")
        with self._lock:
            for sid, session in self._sessions.items():
                if hmac.compare_digest(presented, sid.encode()):
                    return session
        return None

    def set_cookie(self, session: Session) -> str:
        return f"{self.cookie_name}={session.sid}; HttpOnly; SameSite=Strict; Path=/"

    def check_post(self, session: Session, headers, form: dict[str, list[str]]) -> Refusal | None:
        """A state change: same-origin by the browser's own word, and the session's token."""
        origin = headers.get("Origin")
        if origin is not None and origin not in self.allowed_origins():
            return Refusal("a cross-site request is refused (Origin)")
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return Refusal("a cross-site request is refused (Sec-Fetch-Site)")
        presented = (form.get("csrf") or [""])[0]
        if not hmac.compare_digest(presented.encode("utf-8", "replace"), session.csrf.encode()):
            return Refusal("the form's CSRF token is missing or wrong: reload the page")
        return None
