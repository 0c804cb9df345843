"""Driving ``ConsoleApp`` without a socket: headers, the login, form posts."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from bedrock_billing.console.security import Guard
from bedrock_billing.console.server import ConsoleApp

PORT = 8700
HOST = f"127.0.0.1:{PORT}"
SECRET = "s3cret-" + "x" * 40


class Headers(dict):
    """Header lookup as the standard library's message does it (case-insensitive)."""

    def get(self, name, default=None):
        for key, value in self.items():
            if key.lower() == name.lower():
                return value
        return default


@pytest.fixture
def console_app(settings_for):
    """A console over in-process moto (stage ``console``, tables created)."""
    settings = settings_for(stage="console")
    from bedrock_billing.services.customers import init_tables

    init_tables(settings)
    return ConsoleApp(settings, Guard("127.0.0.1", PORT, secret=SECRET))


def login(app) -> tuple[str, str]:
    """Redeem the secret: the session cookie header and the page's CSRF token."""
    answer = app.handle("GET", f"/?secret={SECRET}", Headers(Host=HOST))
    assert answer.status == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"].split(";")[0]
    page = app.handle("GET", "/customers/new", Headers(Host=HOST, Cookie=cookie))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.body.decode()).group(1)
    return cookie, csrf


def post(app, path, fields, **headers):
    body = urllib.parse.urlencode(fields).encode()
    base = {"Host": HOST, "Content-Type": "application/x-www-form-urlencoded"}
    return app.handle("POST", path, Headers({**base, **headers}), body)


def get(app, path, cookie):
    return app.handle("GET", path, Headers(Host=HOST, Cookie=cookie))
