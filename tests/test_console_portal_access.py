"""Issue 19 on issue 17's surfaces: the console's changes land in the audit trail (through
the services), and the portal holds to a customer's or key's IP allowlist."""

from __future__ import annotations

import json

import pytest

from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services.audit import list_audit, verify
from bedrock_billing.settings import resolve_settings
from tests import proxy_support
from tests.proxy_support import event

pytest.importorskip("jinja2")

from .console_support import console_app, login, post  # noqa: E402, F401

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def test_the_consoles_changes_are_in_the_audit_trail(console_app):  # noqa: F811
    app = console_app
    cookie, csrf = login(app)
    cid = customer_svc.create_customer(app.settings, name="Acme", email="o@acme.example")[
        "customer_id"
    ]
    fields = {"csrf": csrf, "daily_request_limit": "100", "monthly_token_limit": "",
              "requests_per_minute": "", "monthly_budget": "", "allowed_models": ""}  # fmt: skip
    assert post(app, f"/customers/{cid}/limits", fields, Cookie=cookie).status == 303
    assert post(app, f"/customers/{cid}/suspend", {"csrf": csrf}, Cookie=cookie).status == 303
    actions = [r["action"] for r in list_audit(app.settings, customer_id=cid)]
    assert actions == ["customer.create", "limits.update", "customer.suspend"]
    assert verify(app.settings)["ok"] is True


def test_the_portal_refuses_an_address_outside_the_allowlist(world):
    settings = resolve_settings(stage="test")
    made = customer_svc.create_customer(settings, name="Acme", email="o@acme.example")
    customer_svc.update_limits(settings, made["customer_id"], allowed_cidrs=["203.0.113.0/24"])
    inside = world.proxy.handle(
        event(None, made["token"], method="GET", path="/v1/account", source_ip="203.0.113.5")
    )
    outside = world.proxy.handle(
        event(None, made["token"], method="GET", path="/v1/account", source_ip="198.51.100.1")
    )
    assert inside["statusCode"] == 200
    assert outside["statusCode"] == 403
    assert json.loads(outside["body"])["error"]["code"] == "ip_not_allowed"
