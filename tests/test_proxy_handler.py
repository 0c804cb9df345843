"""The proxy's handler in process: moto's DynamoDB, a stub Bedrock client, a fixed clock."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from botocore.exceptions import ClientError, ReadTimeoutError

from bedrock_billing.core.logschema import FIELD_NAMES
from tests import proxy_support
from tests.proxy_support import (
    HAIKU,
    claude_body,
    event,
    put_customer,
    put_token,
    usage_items,
)

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def body_of(response):
    return json.loads(response["body"])


def customer_with_token(w, **limits):
    cid = put_customer(w.ddb, w.tables, **limits)
    return cid, put_token(w.ddb, w.tables, cid)


# ---- answers and usage


def test_invoke_returns_model_json_unchanged_and_counts_reported_tokens(world):
    cid, token = customer_with_token(world)
    world.bedrock.counts = (12, 34, 5, 7)
    response = world.proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 200
    assert body_of(response)["content"][0]["text"] == "Paris."
    name, call = world.bedrock.calls[0]
    assert call["modelId"] == HAIKU
    sent = json.loads(call["body"])
    assert "modelId" not in sent and sent["max_tokens"] == 100
    items = usage_items(world.ddb, world.tables, cid)
    day = items[f"DAY#2025-03-15#{HAIKU}"]
    assert day == {
        "requests": 1,
        "input_tokens": 12,
        "output_tokens": 34,
        "cache_read_input_tokens": 5,
        "cache_write_input_tokens": 7,
    }
    meter = items["METER#2025-03"]
    assert meter["d15"] == 1 and meter["tokens"] == 58
    # 12*0.25 + 34*1.25 + (5+7)*0.25 per million (no cache price: input price), in pico-USD
    assert meter["spend"] == (12 * 250_000 + 34 * 1_250_000 + 12 * 250_000)
    [line] = world.logs
    assert tuple(line) == FIELD_NAMES
    assert line["event_type"] == "bedrock_invoke" and line["status"] == 200
    assert (line["input_tokens"], line["output_tokens"]) == (12, 34)
    assert line["token_count"] == 58 and line["usage_estimated"] is False
    assert line["customer_id"] == cid and line["bedrock_latency_ms"] == 120
    assert line["timestamp"] == "2025-03-15T12:00:00Z"
    assert response["headers"]["x-amzn-bedrock-input-token-count"] == "12"


def test_payload_v2_function_url_event_is_served(world):
    _, token = customer_with_token(world)
    response = world.proxy.handle(event(claude_body(), token, version="2.0", path="/bedrock"))
    assert response["statusCode"] == 200


def test_usage_falls_back_to_the_body_when_headers_are_missing(world):
    cid, token = customer_with_token(world)
    world.bedrock.with_headers = False
    world.bedrock.answer = {"content": [], "usage": {"input_tokens": 3, "output_tokens": 4}}
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    assert world.logs[0]["input_tokens"] == 3 and world.logs[0]["usage_estimated"] is False


def test_stream_returns_chunk_array_and_counts_final_metrics(world):
    cid, token = customer_with_token(world)
    world.bedrock.counts = (21, 8, 0, 0)
    response = world.proxy.handle(event(claude_body(stream=True), token))
    chunks = body_of(response)
    assert chunks[-1] == {"done": True}
    assert chunks[0]["type"] == "message_start"
    assert "stream" not in json.loads(world.bedrock.calls[0][1]["body"])
    line = world.logs[0]
    assert line["streamed"] is True and (line["input_tokens"], line["output_tokens"]) == (21, 8)
    assert line["bedrock_latency_ms"] == 150
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert day["input_tokens"] == 21 and "estimated" not in day


def test_stream_without_metrics_uses_anthropic_usage_and_is_flagged(world):
    cid, token = customer_with_token(world)
    world.bedrock.counts = (21, 8, 0, 0)
    world.bedrock.with_metrics = False
    assert world.proxy.handle(event(claude_body(stream=True), token))["statusCode"] == 200
    line = world.logs[0]
    assert (line["input_tokens"], line["output_tokens"], line["usage_estimated"]) == (21, 8, True)
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert day["estimated"] == 1 and day["requests"] == 1


def test_stream_with_no_usage_at_all_is_estimated_not_dropped(world, monkeypatch):
    cid, token = customer_with_token(world)
    world.bedrock.with_metrics = False
    original = world.bedrock._chunks
    monkeypatch.setattr(
        world.bedrock, "_chunks", lambda: [c for c in original() if "usage" not in str(c)]
    )
    assert world.proxy.handle(event(claude_body(stream=True), token))["statusCode"] == 200
    line = world.logs[0]
    assert line["usage_estimated"] is True and line["input_tokens"] > 0
    assert usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]["estimated"] == 1


def test_converse_route_counts_uniform_usage(world):
    cid, token = customer_with_token(world)
    world.bedrock.counts = (9, 11, 2, 0)
    body = {"modelId": HAIKU, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    response = world.proxy.handle(event(body, token, path="/bedrock/converse"))
    assert response["statusCode"] == 200
    assert body_of(response)["output"]["message"]["content"][0]["text"] == "Paris."
    assert world.bedrock.calls[0][0] == "converse"
    line = world.logs[0]
    assert line["api"] == "converse" and line["cache_read_input_tokens"] == 2
    assert line["bedrock_latency_ms"] == 99


def test_converse_stream(world):
    _, token = customer_with_token(world)
    body = {"modelId": HAIKU, "stream": True, "messages": []}
    response = world.proxy.handle(event(body, token, path="/prod/bedrock/converse"))
    chunks = body_of(response)
    assert chunks[-1] == {"done": True} and "metadata" in chunks[-2]
    assert world.logs[0]["input_tokens"] == 12 and world.logs[0]["streamed"] is True


def test_inference_profile_id_is_passed_unchanged_and_counted_on_its_foundation(world):
    cid, token = customer_with_token(world, allowed_models=[HAIKU])
    profile = "us." + HAIKU
    assert world.proxy.handle(event(claude_body(model=profile), token))["statusCode"] == 200
    assert world.bedrock.calls[0][1]["modelId"] == profile
    assert f"DAY#2025-03-15#{HAIKU}" in usage_items(world.ddb, world.tables, cid)
    line = world.logs[0]
    assert line["model_id"] == profile and line["foundation_model"] == HAIKU


def test_prompt_answer_and_token_never_reach_the_log(world):
    _, token = customer_with_token(world)
    world.proxy.handle(event(claude_body("my secret prompt"), token))
    world.proxy.handle(event(claude_body("my secret prompt"), token + "x"))
    text = json.dumps(world.logs)
    assert "secret prompt" not in text and "Paris" not in text and token not in text


def test_near_timeout_is_flagged(world):
    _, token = customer_with_token(world)
    ticks = iter([0.0])  # then 22 s on: within the deadline (29 s less the 5 s margin)
    proxy = world.make()
    proxy.timer = lambda: next(ticks, 22.0)
    assert proxy.handle(event(claude_body(), token))["statusCode"] == 200
    assert world.logs[0]["near_timeout"] is True and world.logs[0]["duration_ms"] == 22000


# ---- Bedrock's errors


def test_bedrock_errors_map_to_honest_statuses_and_refund_the_admission(world):
    cid, token = customer_with_token(world, daily_request_limit=10)
    cases = {
        "ValidationException": 400,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ThrottlingException": 429,
        "ModelTimeoutException": 504,
        "InternalServerException": 502,
        "SomethingNew": 502,
    }
    for code, status in cases.items():
        world.bedrock.error = (code, "User arn:aws:iam::123456789012:role/x is not allowed")
        response = world.proxy.handle(event(claude_body(), token))
        assert response["statusCode"] == status, code
        error = body_of(response)["error"]
        assert error["request_id"] and "123456789012" not in response["body"]
        if status == 429:
            assert response["headers"]["Retry-After"] == "1"
    assert {line["event_type"] for line in world.logs} == {"bedrock_error"}
    items = usage_items(world.ddb, world.tables, cid)
    # The customer's own bad requests (400, 404) keep their daily slot; the rest are given
    # back (docs/proxy.md, "Bedrock's errors and the daily limit").
    assert items["METER#2025-03"]["d15"] == 2
    assert items[f"DAY#2025-03-15#{HAIKU}"]["errors"] == len(cases)


def test_read_timeout_is_504(world, monkeypatch):
    _, token = customer_with_token(world)

    def slow(**_):
        raise ReadTimeoutError(endpoint_url="https://bedrock")

    monkeypatch.setattr(world.bedrock, "invoke_model", slow)
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 504


def test_stream_broken_midway_is_an_error_with_partial_usage_logged(world):
    cid, token = customer_with_token(world)
    world.bedrock.stream_error_after = 2
    response = world.proxy.handle(event(claude_body(stream=True), token))
    assert response["statusCode"] == 502
    assert body_of(response)["error"]["code"] == "model_stream_error"
    line = world.logs[0]
    assert line["event_type"] == "bedrock_error" and line["input_tokens"] == 12


# ---- counter write failures


class FailingTransactions:
    def __init__(self, client):
        self.client, self.attempts = client, 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs):
        self.attempts += 1
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "Tx")


def test_failed_counter_write_keeps_usage_in_log_and_emits_metric(world):
    _, token = customer_with_token(world)
    proxy = world.make()
    failing = FailingTransactions(world.ddb)
    proxy._dynamodb = failing
    response = proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 200
    assert failing.attempts == 3
    line = world.logs[0]
    assert line["counter_write_failed"] is True and line["input_tokens"] == 12
    [metric] = world.metrics
    assert metric["UsageWriteFailures"] == 1
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "BedrockBilling"


# ---- malformed requests


def test_malformed_requests_get_4xx_json(world):
    _, token = customer_with_token(world)
    cases = [
        (event("{not json", token), 400, "invalid_json"),
        (event("[1, 2]", token), 400, "invalid_json"),
        (event('{"a": NaN}', token), 400, "invalid_json"),
        (event(None, token), 400, "missing_body"),
        (event({"max_tokens": 1}, token), 400, "missing_model_id"),
        (event({"modelId": 42}, token), 400, "invalid_model_id"),
        (event({"modelId": "bad id!"}, token), 400, "invalid_model_id"),
        (event({"modelId": HAIKU, "stream": "yes"}, token), 400, "invalid_stream"),
        (event(claude_body(), token, method="GET"), 405, "method_not_allowed"),
        (event(claude_body(), token, path="/other"), 404, "not_found"),
        (event(claude_body(), None), 401, "missing_token"),
        (
            event(claude_body(), None, headers={"Authorization": "Basic abc"}),
            401,
            "invalid_auth_scheme",
        ),
        ("not an event", 400, "invalid_event"),
    ]
    for ev, status, code in cases:
        response = world.proxy.handle(ev)
        assert response["statusCode"] == status, (ev, response)
        assert body_of(response)["error"]["code"] == code
    assert not world.bedrock.calls
    assert all(line["event_type"] == "proxy_refused" for line in world.logs)


def test_body_over_the_bound_is_413_and_base64_bodies_are_read(world):
    _, token = customer_with_token(world)
    proxy = world.make(max_body_bytes=500)
    big = event(claude_body("x" * 600), token)
    assert proxy.handle(big)["statusCode"] == 413
    ev = event(None, token)
    ev["body"], ev["isBase64Encoded"] = base64.b64encode(json.dumps(claude_body()).encode()), True
    ev["body"] = ev["body"].decode()
    assert proxy.handle(ev)["statusCode"] == 200
    ev["body"] = "!!!not base64"
    assert proxy.handle(ev)["statusCode"] == 400


def test_cors_is_off_by_default_and_answers_configured_origins(world):
    _, token = customer_with_token(world)
    origin = {"Origin": "https://app.example"}
    response = world.proxy.handle(event(None, None, method="OPTIONS", headers=origin))
    assert response["statusCode"] == 204
    assert "Access-Control-Allow-Origin" not in response["headers"]
    proxy = world.make(cors_origins=("https://app.example",))
    pre = proxy.handle(event(None, None, method="OPTIONS", headers=origin))
    assert pre["headers"]["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in pre["headers"]["Access-Control-Allow-Headers"]
    ok = proxy.handle(event(claude_body(), token, headers=origin))
    assert ok["headers"]["Access-Control-Allow-Origin"] == "https://app.example"
    other = proxy.handle(event(claude_body(), token, headers={"Origin": "https://evil.example"}))
    assert "Access-Control-Allow-Origin" not in other["headers"]
    # with origins configured every answer varies by Origin, so no shared cache mixes them
    assert other["headers"]["Vary"] == "Origin" and ok["headers"]["Vary"] == "Origin"
    bad_pre = proxy.handle(
        event(None, None, method="OPTIONS", headers={"Origin": "https://evil.example"})
    )
    assert "Access-Control-Allow-Methods" not in bad_pre["headers"]


def test_dynamodb_failure_is_503_without_internal_text(world):
    _, token = customer_with_token(world)
    world.ddb.delete_table(TableName=world.tables.tokens)
    response = world.proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 503
    assert "ResourceNotFound" not in response["body"]


def test_lambda_handler_builds_its_proxy_from_the_environment(world, monkeypatch, capsys):
    from bedrock_billing.proxy import handler

    monkeypatch.setenv("BEDROCK_BILLING_STAGE", "test")
    monkeypatch.setattr(handler, "_proxy", None)
    response = handler.lambda_handler(event(claude_body(), "bbk_unknown"), None)
    assert response["statusCode"] == 401
    assert handler._proxy.config.tables.tokens == world.tables.tokens
    # One JSON line on stdout, as Lambda, then the request's EMF metrics record.
    line, metrics = (json.loads(x) for x in capsys.readouterr().out.strip().splitlines())
    assert line["error_code"] == "invalid_token" and tuple(line) == FIELD_NAMES
    assert metrics["Refusals"] == 1 and "event_type" not in metrics
    monkeypatch.setattr(handler, "_proxy", None)


def test_warm_day_rolls_over_to_new_items(world):
    cid, token = customer_with_token(world, daily_request_limit=1)
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    world.clock.advance(timedelta(hours=12))
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    items = usage_items(world.ddb, world.tables, cid)
    assert items["METER#2025-03"]["d15"] == 1 and items["METER#2025-03"]["d16"] == 1
