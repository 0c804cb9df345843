"""Authentication (cache, rotation, revocation, expiry) and limits, with a moved clock."""

from __future__ import annotations

import json
from datetime import timedelta

from bedrock_billing.core.timeutil import parse_instant
from tests import proxy_support
from tests.proxy_support import (
    HAIKU,
    SONNET,
    claude_body,
    event,
    put_customer,
    put_token,
    set_token_state,
    usage_items,
)

NOW = parse_instant("2025-03-15T12:00:00Z")

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def call(w, token, proxy=None, **kw):
    response = (proxy or w.proxy).handle(event(claude_body(**kw), token))
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def code_of(result):
    return result[1]["error"]["code"]


# ---- authentication


def test_each_auth_refusal_has_its_own_code(world):
    active = put_customer(world.ddb, world.tables)
    suspended = put_customer(world.ddb, world.tables, status="suspended")
    revoked = put_token(world.ddb, world.tables, active, state="revoked")
    expired = put_token(world.ddb, world.tables, active, expires_at=NOW - timedelta(seconds=1))
    stale = put_token(
        world.ddb, world.tables, active, state="previous", grace_until=NOW - timedelta(seconds=1)
    )
    of_suspended = put_token(world.ddb, world.tables, suspended)
    assert call(world, "bbk_nobody")[0] == 401 and code_of(call(world, "bbk_nobody")) == (
        "invalid_token"
    )
    assert code_of(call(world, revoked)) == "token_revoked"
    assert code_of(call(world, expired)) == "token_expired"
    assert code_of(call(world, stale)) == "token_grace_expired"
    result = call(world, of_suspended)
    assert result[0] == 403 and code_of(result) == "customer_suspended"
    assert not world.bedrock.calls


def test_warm_request_makes_no_lookup_call(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    call(world, token)
    world.calls.clear()
    call(world, token)
    assert "GetItem" not in world.calls
    assert world.calls == ["UpdateItem", "TransactWriteItems"]


def test_unknown_tokens_are_cached_briefly(world):
    for _ in range(5):
        call(world, "bbk_flood")
    assert world.calls.count("GetItem") == 1
    world.clock.advance(timedelta(seconds=world.proxy.config.negative_cache_ttl))
    call(world, "bbk_flood")
    assert world.calls.count("GetItem") == 2


def test_auth_cache_is_bounded(world):
    proxy = world.make(auth_cache_size=3)
    for n in range(10):
        call(world, f"bbk_unknown_{n}", proxy=proxy)
    assert len(proxy.auth.cache) == 3


def test_rotated_token_works_during_grace_and_stops_after(world):
    cid = put_customer(world.ddb, world.tables)
    old = put_token(world.ddb, world.tables, cid)
    assert call(world, old)[0] == 200
    # Rotation: the old token becomes "previous" with a grace period; a new one is active.
    grace_until = NOW + timedelta(hours=24)
    set_token_state(world.ddb, world.tables, old, "previous", grace_until=grace_until)
    new = put_token(world.ddb, world.tables, cid)
    world.clock.advance(timedelta(seconds=world.proxy.config.auth_cache_ttl))  # cache expired
    assert call(world, old)[0] == 200 and call(world, new)[0] == 200
    world.clock.set(grace_until - timedelta(seconds=1))
    assert call(world, old)[0] == 200
    world.clock.set(grace_until)  # checked on every request, cached or not: bites on time
    assert code_of(call(world, old)) == "token_grace_expired"
    assert call(world, new)[0] == 200


def test_revoked_token_is_refused_within_the_cache_delay(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    assert call(world, token)[0] == 200
    set_token_state(world.ddb, world.tables, token, "revoked")
    ttl = world.proxy.config.auth_cache_ttl
    world.clock.advance(timedelta(seconds=ttl - 1))
    assert call(world, token)[0] == 200  # still cached: the documented delay
    world.clock.advance(timedelta(seconds=1))
    assert code_of(call(world, token)) == "token_revoked"


def test_expiry_bites_on_time_even_when_cached(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid, expires_at=NOW + timedelta(seconds=5))
    assert call(world, token)[0] == 200
    world.clock.advance(timedelta(seconds=5))
    assert code_of(call(world, token)) == "token_expired"


# ---- limits


def test_daily_limit_refuses_with_retry_after_and_counts_refusals(world):
    cid = put_customer(world.ddb, world.tables, daily_request_limit=2)
    token = put_token(world.ddb, world.tables, cid)
    assert [call(world, token)[0] for _ in range(2)] == [200, 200]
    response = world.proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 429
    error = json.loads(response["body"])["error"]
    assert error["code"] == "daily_request_limit_exceeded"
    assert error["limit"] == "daily_request_limit"
    assert response["headers"]["Retry-After"] == str(12 * 3600)  # to 00:00Z
    items = usage_items(world.ddb, world.tables, cid)
    assert items["METER#2025-03"]["d15"] == 2
    assert items[f"DAY#2025-03-15#{HAIKU}"]["refused"] == 1
    assert world.logs[-1]["event_type"] == "proxy_refused"
    world.clock.set("2025-03-16T00:00:00Z")
    assert call(world, token)[0] == 200


def test_requests_per_minute(world):
    cid = put_customer(world.ddb, world.tables, requests_per_minute=2, daily_request_limit=100)
    token = put_token(world.ddb, world.tables, cid)
    world.clock.set("2025-03-15T12:00:45Z")
    assert [call(world, token)[0] for _ in range(2)] == [200, 200]
    world.calls.clear()
    response = world.proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 429 and response["headers"]["Retry-After"] == "15"
    assert json.loads(response["body"])["error"]["limit"] == "requests_per_minute"
    world.clock.set("2025-03-15T12:01:00Z")
    world.calls.clear()
    assert call(world, token)[0] == 200
    assert world.calls == ["UpdateItem", "UpdateItem", "TransactWriteItems"]
    minute = world.ddb.get_item(
        TableName=world.tables.usage,
        Key={"customer_id": {"S": cid}, "sk": {"S": "MIN#2025-03-15T12:01"}},
    )["Item"]
    assert int(minute["ttl"]["N"]) > NOW.timestamp()


def test_minute_slot_is_given_back_when_the_meter_refuses(world):
    cid = put_customer(world.ddb, world.tables, requests_per_minute=5, daily_request_limit=1)
    token = put_token(world.ddb, world.tables, cid)
    assert call(world, token)[0] == 200
    assert code_of(call(world, token)) == "daily_request_limit_exceeded"
    assert usage_items(world.ddb, world.tables, cid)["MIN#2025-03-15T12:00"]["n"] == 1


def test_monthly_token_limit_overshoot_is_one_request(world):
    cid = put_customer(world.ddb, world.tables, monthly_token_limit=50)
    token = put_token(world.ddb, world.tables, cid)
    world.bedrock.counts = (12, 34, 0, 0)  # 46 per request
    assert call(world, token)[0] == 200  # 0 < 50
    assert call(world, token)[0] == 200  # 46 < 50: admitted, ends at 92 (the overshoot)
    result = call(world, token)
    assert result[0] == 429 and code_of(result) == "monthly_token_limit_exceeded"
    assert usage_items(world.ddb, world.tables, cid)["METER#2025-03"]["tokens"] == 92


def test_monthly_budget_is_metered_exactly_in_pico_usd(world):
    cid = put_customer(world.ddb, world.tables, monthly_budget="0.0001")
    token = put_token(world.ddb, world.tables, cid)
    world.bedrock.counts = (12, 34, 0, 0)  # 45,500,000 pico-USD with Haiku's prices
    assert [call(world, token)[0] for _ in range(3)] == [200, 200, 200]
    result = call(world, token)
    assert result[0] == 429 and code_of(result) == "monthly_budget_exceeded"
    assert usage_items(world.ddb, world.tables, cid)["METER#2025-03"]["spend"] == 3 * 45_500_000


def test_budget_refuses_models_without_a_price(world):
    cid = put_customer(world.ddb, world.tables, monthly_budget="10")
    token = put_token(world.ddb, world.tables, cid)
    result = call(world, token, model="acme.unpriced-model-v1:0")
    assert result[0] == 403 and code_of(result) == "model_not_priced"


def test_allowed_models_by_foundation_id(world):
    cid = put_customer(world.ddb, world.tables, allowed_models=[HAIKU])
    token = put_token(world.ddb, world.tables, cid)
    result = call(world, token, model=SONNET)
    assert result[0] == 403 and code_of(result) == "model_not_allowed"
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.{HAIKU}"
    assert call(world, token, model=arn)[0] == 200
    items = usage_items(world.ddb, world.tables, cid)
    assert items[f"DAY#2025-03-15#{SONNET}"]["refused"] == 1


def test_zero_limit_refuses_the_first_request(world):
    cid = put_customer(world.ddb, world.tables, daily_request_limit=0)
    token = put_token(world.ddb, world.tables, cid)
    assert code_of(call(world, token)) == "daily_request_limit_exceeded"


def test_month_rollover_resets_token_limit(world):
    cid = put_customer(world.ddb, world.tables, monthly_token_limit=10)
    token = put_token(world.ddb, world.tables, cid)
    assert call(world, token)[0] == 200
    assert call(world, token)[0] == 429
    world.clock.set("2025-04-01T00:00:00Z")
    assert call(world, token)[0] == 200
