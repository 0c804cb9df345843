"""The console's HTTP side: a loopback server (the standard library's, through
``bedrock_billing.localhttp``), the guard of every request (console/security.py), a route
table, and the answers' security headers.

:class:`ConsoleApp` turns one request into one :class:`Response` and can be called without
a socket (the tests do); :class:`ConsoleServer` serves it on loopback in a thread. Pages are
handled one at a time (one operator; boto3 sessions are not thread-safe), static files too.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from ..core.errors import AwsError, BillingError, Conflict, InvalidInput, NotFound
from ..core.timeutil import Clock, system_clock
from ..localhttp.server import BackgroundServer, LocalHandler, LocalServer, RequestError
from .answers import MAX_FORM, SECURITY_HEADERS, Request, Response
from .security import Guard, Refusal

HERE = Path(__file__).parent
ERROR_STATUS = ((InvalidInput, 400), (NotFound, 404), (Conflict, 409), (AwsError, 502))


class ConsoleApp:
    """The console without its socket: ``handle(method, target, headers, body)``."""

    def __init__(self, settings, guard: Guard, *, clock: Clock = system_clock, debug=False):
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        from . import views

        self.settings = settings
        self.guard = guard
        self.clock = clock
        self.debug = debug
        self.lock = threading.Lock()
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(views.TEMPLATE_GLOBALS)
        self.templates.filters.update(views.TEMPLATE_FILTERS)
        self.routes = [(m, re.compile(p + r"\Z"), f) for m, p, f in views.ROUTES]

    # ---- one request

    def handle(self, method: str, target: str, headers, body: bytes = b"") -> Response:
        response = self._handle(method, target, headers, body)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _handle(self, method, target, headers, body) -> Response:
        refusal = self.guard.check_host(headers.get("Host"))
        if refusal:
            return self.refuse(refusal)
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        if "secret" in query:
            return self._redeem(parts.path, query)
        session = self.guard.session_for(headers.get("Cookie"))
        if session is None:
            return self.refuse(Refusal("open the URL `bedrock-billing console` printed"))
        request = Request(method, parts.path, query, headers, session=session)
        if method == "POST":
            kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/x-www-form-urlencoded" or len(body) > MAX_FORM:
                return self.refuse(Refusal("a form post is expected"))
            request.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            refusal = self.guard.check_post(session, headers, request.form)
            if refusal:
                return self.refuse(refusal)
        return self._route(request)

    def _redeem(self, path: str, query: dict[str, list[str]]) -> Response:
        outcome = self.guard.redeem(query["secret"][0])
        if isinstance(outcome, Refusal):
            return self.refuse(outcome)
        rest = {k: v for k, v in query.items() if k != "secret"}
        location = (path or "/") + ("?" + urlencode(rest, doseq=True) if rest else "")
        response = Response.redirect(location)
        response.headers["Set-Cookie"] = self.guard.set_cookie(outcome)
        return response

    def _route(self, request: Request) -> Response:
        allowed = False
        for method, pattern, view in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            allowed = True
            if method == request.method or (method == "GET" and request.method == "HEAD"):
                return self._call(view, request, match.groupdict())
        if allowed:
            return self.error_page(request, 405, "method not allowed")
        return self.error_page(request, 404, "no such page")

    def _call(self, view, request: Request, params: dict[str, str]) -> Response:
        with self.lock:
            try:
                return view(self, request, **params)
            except BillingError as exc:
                status = next((s for t, s in ERROR_STATUS if isinstance(exc, t)), 400)
                return self.error_page(request, status, exc.message)
            except Exception as exc:  # AWS and the unexpected: one line, never a traceback
                if self.debug:
                    import traceback

                    traceback.print_exc(file=sys.stderr)
                from ..awsclient import aws_error

                translated = aws_error(exc)
                if translated is not None:
                    return self.error_page(request, 502, translated.message)
                return self.error_page(request, 500, f"unexpected {type(exc).__name__}")

    # ---- answers

    def render(self, request: Request | None, template: str, status: int = 200, **context):
        context.setdefault("csrf", request.session.csrf if request and request.session else "")
        context.setdefault("path", request.path if request else "")
        page = self.templates.get_template(template).render(**context)
        return Response.html(page, status)

    def error_page(self, request: Request | None, status: int, message: str) -> Response:
        return self.render(request, "error.html", status, code=status, message=message)

    def refuse(self, refusal: Refusal) -> Response:
        return self.render(None, "forbidden.html", 403, message=refusal.reason)


class _Handler(LocalHandler):
    max_body = MAX_FORM
    server: _Server

    def _serve(self) -> None:
        body = b""
        if self.command == "POST":
            try:
                body = self.read_body()
            except RequestError as err:
                self.send_bytes(err.status, {"Content-Type": "text/plain; charset=utf-8"},
                                err.message.encode())  # fmt: skip
                return
        try:
            response = self.server.app.handle(self.command, self.path, self.headers, body)
        except Exception:  # a page that cannot render: one line, never a traceback
            response = Response(500, b"unexpected error", {"Content-Type": "text/plain"})
            for name, value in SECURITY_HEADERS.items():
                response.headers[name] = value
        self.send_bytes(response.status, response.headers, response.body)

    do_GET = do_HEAD = do_POST = _serve


class _Server(LocalServer):
    app: ConsoleApp


class ConsoleServer(BackgroundServer):
    """The console on ``host:port`` (loopback; port 0 picks a free one)."""

    thread_name = "console"

    def __init__(self, settings, host: str = "127.0.0.1", port: int = 0, **app_options):
        super().__init__(host, port)
        self.settings = settings
        self.app_options = app_options
        self.app: ConsoleApp | None = None

    def _make_server(self, address, ssl_context) -> LocalServer:
        server = _Server(address, _Handler)
        guard = Guard(self.host, server.server_address[1])
        server.app = self.app = ConsoleApp(self.settings, guard, **self.app_options)
        return server

    def login_url(self) -> str:
        return self.app.guard.login_url()
