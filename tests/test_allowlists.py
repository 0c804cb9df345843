"""IP allowlists per customer and per key: the proxy checks the source address API Gateway
reports (REST: requestContext.identity.sourceIp; HTTP API / Function URL:
requestContext.http.sourceIp), never a header the client sets."""

from __future__ import annotations

import json

import pytest

from bedrock_billing.core.customers import address_allowed, parse_cidr_list
from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services import keys as key_svc
from bedrock_billing.settings import resolve_settings
from tests import proxy_support
from tests.proxy_support import claude_body, event

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


@pytest.fixture
def settings(world):
    return resolve_settings(stage="test")


def send(world, token, source_ip, version="1.0", headers=None):
    response = world.proxy.handle(
        event(claude_body(), token, source_ip=source_ip, version=version, headers=headers)
    )
    body = json.loads(response["body"]) if response["body"] else None
    return response["statusCode"], (body or {}).get("error", {}).get("code")


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_customer_allowlist_refuses_outside_addresses_with_its_own_code(settings, world, version):
    created = customer_svc.create_customer(settings, name="Acme", email="ops@acme.example")
    cid, token = created["customer_id"], created["token"]
    result = customer_svc.update_limits(
        settings, cid, allowed_cidrs=["203.0.113.0/24", "2001:db8::/32"]
    )
    assert result["limits"]["allowed_cidrs"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert send(world, token, "203.0.113.9", version) == (200, None)
    assert send(world, token, "2001:db8::1", version) == (200, None)
    assert send(world, token, "198.51.100.7", version) == (403, "ip_not_allowed")
    # A spoofed X-Forwarded-For (or any such header) naming an allowed address does not help.
    spoof = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9",
             "Forwarded": "for=203.0.113.9"}  # fmt: skip
    assert send(world, token, "198.51.100.7", version, spoof) == (403, "ip_not_allowed")
    # No source address at all (an event without one): refused, never let through.
    assert send(world, token, None, version) == (403, "ip_not_allowed")
    assert send(world, token, None, version, spoof) == (403, "ip_not_allowed")
    refused = [ln for ln in world.logs if ln["error_code"] == "ip_not_allowed"]
    assert len(refused) == 4
    assert len(world.bedrock.calls) == 2  # only the two allowed requests reached Bedrock


def test_key_allowlist_narrows_and_other_keys_are_unaffected(settings, world):
    created = customer_svc.create_customer(settings, name="Acme", email="ops@acme.example")
    cid, default = created["customer_id"], created["token"]
    office = key_svc.create_key(settings, cid, name="office", allowed_cidrs="192.0.2.0/28")
    assert send(world, office["token"], "192.0.2.5") == (200, None)
    assert send(world, office["token"], "192.0.2.99") == (403, "ip_not_allowed")
    assert send(world, default, "192.0.2.99") == (200, None)  # the default key has no list
    # An IPv4-mapped IPv6 address is its IPv4 address.
    assert send(world, office["token"], "::ffff:192.0.2.5") == (200, None)


def test_cidr_parsing_and_matching():
    assert parse_cidr_list("10.0.0.0/8, 2001:db8::/32") == ["10.0.0.0/8", "2001:db8::/32"]
    assert parse_cidr_list(["192.0.2.1"]) == ["192.0.2.1/32"]
    assert parse_cidr_list("any") is None
    for bad in ("10.0.0.7/8", "300.1.1.1/32", "not-an-ip", "10.0.0.0/33"):
        with pytest.raises(InvalidInput):
            parse_cidr_list(bad)
    assert address_allowed("10.1.2.3", ("10.0.0.0/8",))
    assert not address_allowed("11.1.2.3", ("10.0.0.0/8",))
    assert not address_allowed("garbage", ("10.0.0.0/8",))
    assert not address_allowed(None, ("10.0.0.0/8",))
    assert address_allowed(None, None)
    assert not address_allowed("2001:db8::1", ("10.0.0.0/8",))


def test_security_events_are_counted_per_address_with_no_dynamodb_write(settings, world):
    from bedrock_billing.core.logschema import SECURITY_ALARM_THRESHOLD
    from bedrock_billing.deploy.template_alarms import security_filter

    created = customer_svc.create_customer(settings, name="Acme", email="ops@acme.example")
    customer_svc.update_limits(settings, created["customer_id"], allowed_cidrs="203.0.113.0/24")
    world.proxy.handle(event(claude_body(), created["token"], source_ip="203.0.113.1"))
    world.calls.clear()
    for _ in range(3):
        send(world, "bbk_guess-" + "x" * 40, "198.51.100.7")
    send(world, created["token"], "198.51.100.7")  # outside the allowlist
    send(world, "bbk_guess-" + "y" * 40, "192.0.2.1")
    counts = [(ln["source_ip"], ln["security_events"]) for ln in world.logs[-5:]]
    assert counts == [("198.51.100.7", 1), ("198.51.100.7", 2), ("198.51.100.7", 3),
                      ("198.51.100.7", 4), ("192.0.2.1", 1)]  # fmt: skip
    assert not [c for c in world.calls if c != "GetItem"]  # reads only: no write per event
    assert world.logs[0]["security_events"] is None  # a served request is not an event
    pattern = security_filter(type("C", (), {"log_group_name": "g"})())["Properties"]
    assert pattern["FilterPattern"] == f"{{ $.security_events >= {SECURITY_ALARM_THRESHOLD} }}"
