"""The console's guard: without the one-time secret's session every URL answers 403, the
Host header is checked, every state change needs the session's CSRF token and a same-site
origin, and the command refuses a non-loopback address. The app is driven without a socket
(``ConsoleApp.handle``) over in-process moto, and once through a real server and the CLI."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import urllib.parse

import pytest

pytest.importorskip("jinja2")

from bedrock_billing.console.server import ConsoleServer  # noqa: E402
from bedrock_billing.console.views import ROUTES  # noqa: E402

from .cli_helpers import run  # noqa: E402
from .console_support import (  # noqa: E402, F401 - console_app is a fixture
    HOST,
    PORT,
    SECRET,
    Headers,
    console_app,
    login,
    post,
)

CID = "0f0c05cb-e146-49e6-a005-2e6edd5bd626"


def sample_path(pattern: str) -> str:
    """A concrete path for each route of the table."""
    fills = {"cid": CID, "period": "2026-11", "action": "suspend", "name": "console.css"}
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)(?:\{[^}]*\})?", lambda m: fills[m.group(1)], pattern)
    path = re.sub(r"\\(.)", r"\1", path)
    if "/invoices/" in path and path.endswith("/suspend"):
        path = path[: -len("suspend")] + "finalize"
    return path


EVERY_ROUTE = sorted({(method, sample_path(pattern)) for method, pattern, _ in ROUTES})




@pytest.fixture
def app(console_app):  # noqa: F811 - the imported fixture, under the short name
    return console_app


@pytest.mark.parametrize(("method", "path"), [*EVERY_ROUTE, ("GET", "/no/such/page")])
def test_every_url_answers_403_without_the_secret_or_with_a_wrong_one(app, method, path):
    for target, headers in (
        (path, Headers(Host=HOST)),
        (path + "?secret=wrong", Headers(Host=HOST)),
        (path, Headers(Host=HOST, Cookie=f"bb_console_{PORT}=forged")),
    ):
        answer = app.handle(method, target, headers, b"csrf=x")
        assert answer.status == 403, (method, target)
        assert "Set-Cookie" not in answer.headers
        assert SECRET.encode() not in answer.body


def test_route_table_is_covered():
    assert len(EVERY_ROUTE) == len(ROUTES)
    assert {m for m, _ in EVERY_ROUTE} == {"GET", "POST"}


def test_the_secret_opens_one_session_once(app):
    answer = app.handle("GET", f"/usage?secret={SECRET}&period=2026-11", Headers(Host=HOST))
    assert answer.status == 303
    assert answer.headers["Location"] == "/usage?period=2026-11"  # the secret leaves the URL
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"bb_console_{PORT}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    again = app.handle("GET", f"/?secret={SECRET}", Headers(Host=HOST))
    assert again.status == 403
    session = cookie.split(";")[0]
    assert app.handle("GET", "/customers/new", Headers(Host=HOST, Cookie=session)).status == 200


@pytest.mark.parametrize("host", ["evil.example:8700", "127.0.0.1:8701", "127.0.0.1", None,
                                  "localhost.evil.example:8700"])  # fmt: skip
def test_a_foreign_host_header_is_refused_even_with_a_session(app, host):
    cookie, _ = login(app)
    headers = Headers(Cookie=cookie) if host is None else Headers(Host=host, Cookie=cookie)
    answer = app.handle("GET", "/customers/new", headers)
    assert answer.status == 403
    assert "Host header" in answer.body.decode()
    assert app.handle("GET", "/customers/new", Headers(Host="localhost:8700", Cookie=cookie))\
        .status == 200  # fmt: skip


def test_a_post_needs_the_sessions_csrf_token_and_a_same_site_origin(app):
    cookie, csrf = login(app)
    fields = {"name": "Acme", "email": "ops@acme.example"}
    refused = [
        post(app, "/customers", fields, Cookie=cookie),
        post(app, "/customers", {**fields, "csrf": "wrong"}, Cookie=cookie),
        post(app, "/customers", {**fields, "csrf": csrf}, Cookie=cookie,
             Origin="http://evil.example"),
        post(app, "/customers", {**fields, "csrf": csrf}, Cookie=cookie, Origin="null"),
        post(app, "/customers", {**fields, "csrf": csrf}, Cookie=cookie,
             **{"Sec-Fetch-Site": "cross-site"}),
        post(app, "/customers", {**fields, "csrf": csrf}, Cookie=cookie,
             **{"Content-Type": "text/plain"}),
    ]  # fmt: skip
    assert [r.status for r in refused] == [403] * len(refused)
    from bedrock_billing.services.customers import list_customers

    assert list_customers(app.settings) == []  # nothing was written
    made = post(app, "/customers", {**fields, "csrf": csrf}, Cookie=cookie,
                Origin="http://127.0.0.1:8700", **{"Sec-Fetch-Site": "same-origin"})  # fmt: skip
    assert made.status == 201
    assert made.headers["Cache-Control"] == "no-store"  # the token is on this page, once
    assert [c["name"] for c in list_customers(app.settings)] == ["Acme"]


def test_a_get_changes_nothing(app):
    cookie, _ = login(app)
    from bedrock_billing.services.customers import create_customer, show_customer

    made = create_customer(app.settings, name="Acme", email="ops@acme.example")
    cid = made["customer_id"]
    page = app.handle("GET", f"/customers/{cid}/confirm/suspend", Headers(Host=HOST, Cookie=cookie))
    assert page.status == 200 and "Suspend this customer?" in page.body.decode()
    assert app.handle("GET", f"/customers/{cid}/suspend", Headers(Host=HOST, Cookie=cookie))\
        .status == 405  # fmt: skip
    assert show_customer(app.settings, cid)["status"] == "active"


def test_pages_carry_a_strict_content_security_policy(app):
    cookie, _ = login(app)
    answer = app.handle("GET", "/customers", Headers(Host=HOST, Cookie=cookie))
    assert answer.status == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "<script src=\"/static/console.js\"" in answer.body.decode()
    assert "<script>" not in answer.body.decode() and " style=" not in answer.body.decode()


def test_service_errors_are_one_line_pages_in_the_right_status(app):
    cookie, csrf = login(app)
    missing = app.handle("GET", f"/customers/{CID}", Headers(Host=HOST, Cookie=cookie))
    assert missing.status == 404 and "Error: " in missing.body.decode()
    bad = post(app, "/customers", {"name": "A", "email": "not-an-email", "csrf": csrf},
               Cookie=cookie)  # fmt: skip
    assert bad.status == 400 and "invalid email" in bad.body.decode()
    assert "Traceback" not in bad.body.decode()


def test_a_real_server_checks_the_host_header_on_its_socket(settings_for):
    server = ConsoleServer(settings_for(stage="console"), "127.0.0.1", 0).start()
    try:
        url = urllib.parse.urlsplit(server.login_url())
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", f"{url.path}?{url.query}", headers={"Host": "rebound.example"})
        assert conn.getresponse().status == 403
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", f"{url.path}?{url.query}")
        answer = conn.getresponse()
        assert answer.status == 303 and answer.getheader("Set-Cookie")
        conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::1"])
def test_the_command_refuses_a_non_loopback_host(host):
    result = run("console", "--host", host, "--port", "0", expect=2)
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "loopback" in result.stderr and result.stdout == ""


def test_the_command_prints_one_json_line_with_a_url_that_works_once(tmp_path):
    command = [sys.executable, "-m", "bedrock_billing", "console", "--port", "0", "-o", "json",
               "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(process.stdout.readline())
        url = urllib.parse.urlsplit(info["url"])
        assert url.hostname == "127.0.0.1" and url.port == info["port"]
        assert re.fullmatch(r"secret=[A-Za-z0-9_-]{40,}", url.query)
        for expected in (303, 403):
            conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=10)
            conn.request("GET", f"/?{url.query}")
            assert conn.getresponse().status == expected
            conn.close()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Console stopped." in err


def test_the_console_holds_no_cli_and_no_aws_calls_of_its_own():
    """Pages call services; the console package imports neither Typer/Rich nor boto3."""
    from .test_layering import import_graph

    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("bedrock_billing.console"):
            assert not [t for t in targets if t.startswith(("bedrock_billing.cli",
                                                            "bedrock_billing.stores"))], name
    probe = ("import sys, bedrock_billing.console.server, bedrock_billing.console.views\n"
             "print(' '.join(m for m in ('typer', 'rich', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr
