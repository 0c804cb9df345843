"""Named keys end to end in one process: the keys service writes (moto), the proxy serves
(moto + the stub Bedrock, a moved clock). Revocation, a key's own daily limit, rotation,
usage per key, the narrowing rule and the migration of tokens made before keys."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bedrock_billing.core.errors import Conflict, InvalidInput
from bedrock_billing.core.schema import day_attribute, key_day_key, meter_key
from bedrock_billing.core.timeutil import parse_instant
from bedrock_billing.core.tokens import hash_token
from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services import keys as svc
from bedrock_billing.settings import resolve_settings
from tests import proxy_support
from tests.proxy_support import (
    HAIKU,
    SONNET,
    claude_body,
    event,
    put_customer,
    put_token,
    usage_items,
)

NOW = parse_instant("2025-03-15T12:00:00Z")
aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


@pytest.fixture
def settings(world):
    return resolve_settings(stage="test")


def send(world, token, proxy=None, **kw):
    response = (proxy or world.proxy).handle(event(claude_body(**kw), token))
    body = json.loads(response["body"]) if response["body"] else None
    return response["statusCode"], body


def code(result):
    return result[1]["error"]["code"]


def new_customer(settings, world, daily_limit=None):
    created = customer_svc.create_customer(
        settings, name="Acme", email="ops@acme.example", daily_limit=daily_limit,
        clock=world.clock,
    )  # fmt: skip
    return created["customer_id"], created["token"]


def test_three_keys_one_revoked_one_limited_usage_per_key(settings, world):
    cid, default_token = new_customer(settings, world)
    ci = svc.create_key(settings, cid, name="ci", clock=world.clock)
    prod = svc.create_key(settings, cid, name="prod", clock=world.clock)
    small = svc.create_key(settings, cid, name="batch", daily_limit="3", clock=world.clock)
    assert ci["token"].startswith("bbk_") and not ci["token"].startswith("bbk_test_")
    listed = {k["name"]: k for k in svc.list_keys(settings, cid, clock=world.clock)}
    assert set(listed) == {"default", "ci", "prod", "batch"}
    assert listed["batch"]["daily_request_limit"] == 3 and "token" not in listed["ci"]

    sent = {"ci": 0, "prod": 0, "batch": 0}
    for name, key in (("ci", ci), ("prod", prod), ("batch", small)):
        for _ in range(2):
            assert send(world, key["token"])[0] == 200
            sent[name] += 1

    # The revoked key is refused within the cache delay; the other two go on.
    svc.revoke_key(settings, cid, ci["key_id"], clock=world.clock)
    assert send(world, ci["token"])[0] == 200  # cached in this container: still in
    sent["ci"] += 1
    world.clock.advance(timedelta(seconds=31))
    revoked = send(world, ci["token"])
    assert revoked[0] == 401 and code(revoked) == "token_revoked"
    assert send(world, prod["token"])[0] == 200
    sent["prod"] += 1

    # The key with its own daily limit is refused at it; the others go on.
    assert send(world, small["token"])[0] == 200
    sent["batch"] += 1
    refused = send(world, small["token"])
    assert refused[0] == 429 and code(refused) == "key_daily_request_limit_exceeded"
    assert send(world, prod["token"])[0] == 200 and send(world, default_token)[0] == 200
    sent["prod"] += 1

    report = svc.key_usage(settings, cid, period="2025-03", clock=world.clock)
    per_key = {listed_id: t["requests"] for listed_id, t in report["totals"].items()}
    assert per_key == {
        ci["key_id"]: sent["ci"], prod["key_id"]: sent["prod"],
        small["key_id"]: sent["batch"], "default": 1,
    }  # fmt: skip
    items = usage_items(world.ddb, world.tables, cid)
    assert items[meter_key(NOW)][day_attribute(NOW)] == sum(sent.values()) + 1
    # The refused request gave its key slot back? No: it never got one (limit 3, 3 admitted).
    assert items[key_day_key(small["key_id"], NOW)]["admitted"] == 3
    # The log lines name the key, never a token.
    lines = [ln for ln in world.logs if ln.get("key_id") == prod["key_id"]]
    assert len(lines) == sent["prod"]
    text = json.dumps(world.logs)
    for key in (ci, prod, small):
        assert key["token"] not in text


def test_customer_limit_holds_across_keys_and_key_limit_narrows(settings, world):
    cid, _ = new_customer(settings, world, daily_limit=4)
    with pytest.raises(InvalidInput, match="narrow"):
        svc.create_key(settings, cid, name="wide", daily_limit="5", clock=world.clock)
    a = svc.create_key(settings, cid, name="a", clock=world.clock)
    b = svc.create_key(settings, cid, name="b", daily_limit="4", clock=world.clock)
    statuses = [send(world, k["token"])[0] for k in (a, b, a, b, a, b)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    items = usage_items(world.ddb, world.tables, cid)
    # b's slot taken before the customer's meter refused was given back.
    assert items[key_day_key(b["key_id"], NOW)]["admitted"] == 2


def test_key_allowed_models_intersect_the_customers(settings, world):
    cid = put_customer(world.ddb, world.tables, allowed_models=[HAIKU, SONNET])
    put_token(world.ddb, world.tables, cid)
    with pytest.raises(InvalidInput, match="not allowed for the customer"):
        svc.create_key(settings, cid, name="x", allowed_models=["amazon.nova-pro-v1:0"])
    key = svc.create_key(settings, cid, name="haiku-only", allowed_models=[HAIKU])
    assert send(world, key["token"])[0] == 200
    refused = send(world, key["token"], model=SONNET)
    assert refused[0] == 403 and code(refused) == "model_not_allowed"


def test_rotate_a_key_keeps_its_id_limits_and_grace(settings, world):
    cid, _ = new_customer(settings, world)
    key = svc.create_key(settings, cid, name="ci", daily_limit="10", clock=world.clock)
    rotated = svc.rotate_key(settings, cid, key["key_id"], grace_period="1h", clock=world.clock)
    assert rotated["key_id"] == key["key_id"] and rotated["token"] != key["token"]
    assert send(world, key["token"])[0] == 200 and send(world, rotated["token"])[0] == 200
    world.clock.advance(timedelta(hours=2))
    stale = send(world, key["token"])
    assert stale[0] == 401 and code(stale) == "token_grace_expired"
    assert send(world, rotated["token"])[0] == 200
    row = next(k for k in svc.list_keys(settings, cid, clock=world.clock) if k["name"] == "ci")
    assert row["daily_request_limit"] == 10 and row["token_prefix"] == rotated["token_prefix"]
    report = svc.key_usage(settings, cid, period="2025-03", clock=world.clock)
    assert report["totals"][key["key_id"]]["requests"] == 3


def test_names_are_unique_and_bad_input_writes_nothing(settings, world):
    cid, _ = new_customer(settings, world)
    svc.create_key(settings, cid, name="ci")
    with pytest.raises(Conflict):
        svc.create_key(settings, cid, name="ci")
    for bad in ({"name": "has space"}, {"name": "ok", "daily_limit": "-1"},
                {"name": "ok", "allowed_cidrs": ["10.0.0.7/8"]}):  # fmt: skip
        with pytest.raises(InvalidInput):
            svc.create_key(settings, cid, **bad)
    assert [k["name"] for k in svc.list_keys(settings, cid)] == ["default", "ci"]
    with pytest.raises(InvalidInput):
        svc.revoke_key(settings, cid, "not-a-key")


def test_migration_of_tokens_made_before_keys_has_a_dry_run_and_runs_twice(settings, world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)  # an item from before keys: no key_id
    world.ddb.update_item(
        TableName=world.tables.customers,
        Key={"customer_id": {"S": cid}},
        UpdateExpression="SET current_token_hash = :h",
        ExpressionAttributeValues={":h": {"S": hash_token(token)}},
    )

    def key_of():
        item = world.ddb.get_item(
            TableName=world.tables.tokens, Key={"token_hash": {"S": hash_token(token)}}
        )["Item"]
        return item.get("key_id", {}).get("S")

    dry = svc.migrate_keys(settings, dry_run=True)
    assert dry["migrated"] == 1 and dry["tokens"][0]["result"] == "would migrate"
    assert key_of() is None
    assert svc.migrate_keys(settings)["migrated"] == 1 and key_of() == "default"
    assert svc.migrate_keys(settings)["migrated"] == 0
    assert send(world, token)[0] == 200
    items = usage_items(world.ddb, world.tables, cid)
    assert items[key_day_key("default", NOW)]["requests"] == 1
