"""Bedrock Runtime's REST routes as Lambda events: REST API (payload 1.0) and HTTP API /
Function URL (2.0) events, under a stage prefix and under none, with the model id
percent-encoded (boto3) or not (AnthropicBedrock). The answers are Bedrock's own shapes."""

from __future__ import annotations

import base64
import json

import pytest

from bedrock_billing.core import eventstream
from tests import proxy_support
from tests.proxy_support import HAIKU, SONNET, event, put_customer, put_token, usage_items

aws_env = proxy_support.aws_env
world = proxy_support.world

CLAUDE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
MODEL_FORMS = {
    "encoded": "anthropic.claude-3-haiku-20240307-v1%3A0",
    "plain": HAIKU,
    "profile": "us.anthropic.claude-3-haiku-20240307-v1%3A0",
    "arn": "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2F"
    "anthropic.claude-3-haiku-20240307-v1%3A0",
}


def customer(world, **limits):
    cid = put_customer(world.ddb, world.tables, **limits)
    return cid, put_token(world.ddb, world.tables, cid)


def decode(response) -> bytes:
    body = response["body"]
    return base64.b64decode(body) if response["isBase64Encoded"] else body.encode()


def frames(response) -> list:
    messages, rest = eventstream.decode_messages(decode(response))
    assert rest == b""
    return messages


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("prefix", ["", "/prod"])
@pytest.mark.parametrize("form", sorted(MODEL_FORMS))
def test_invoke_route_in_every_event_shape(world, version, prefix, form):
    cid, token = customer(world)
    path = f"{prefix}/model/{MODEL_FORMS[form]}/invoke"
    response = world.proxy.handle(event(CLAUDE, token, path=path, version=version))
    assert response["statusCode"] == 200, response
    assert json.loads(decode(response))["content"][0]["text"] == "Paris."
    assert response["headers"]["X-Amzn-Bedrock-Input-Token-Count"] == "12"
    assert response["headers"]["X-Amzn-Bedrock-Output-Token-Count"] == "34"
    assert response["headers"]["x-amzn-RequestId"]
    op, kwargs = world.bedrock.calls[-1]
    assert op == "invoke_model" and json.loads(kwargs["body"]) == CLAUDE
    assert "%" not in kwargs["modelId"]
    line = world.logs[-1]
    assert line["foundation_model"] == HAIKU and line["wire_api"] == "bedrock-runtime"
    assert line["api"] == "invoke" and line["input_tokens"] == 12


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("prefix", ["", "/prod"])
def test_every_operation_under_each_prefix(world, version, prefix):
    cid, token = customer(world)
    model = MODEL_FORMS["encoded"]

    def call(op, body):
        path = f"{prefix}/model/{model}/{op}"
        return world.proxy.handle(event(body, token, path=path, version=version))

    stream = call("invoke-with-response-stream", CLAUDE)
    assert stream["statusCode"] == 200
    assert stream["headers"]["Content-Type"] == eventstream.CONTENT_TYPE
    chunks = [eventstream.chunk_json(m) for m in frames(stream)]
    assert chunks[0]["type"] == "message_start"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 34

    converse = call("converse", CONVERSE)
    assert json.loads(decode(converse))["output"]["message"]["content"][0]["text"] == "Paris."
    streamed = frames(call("converse-stream", CONVERSE))
    events = [(m.event_type, json.loads(m.payload)) for m in streamed]
    assert [e for e, _ in events] == [
        "messageStart", "contentBlockDelta", "messageStop", "metadata"
    ]  # fmt: skip
    assert events[-1][1]["usage"]["outputTokens"] == 34

    counted = call("count-tokens", {"input": {"converse": CONVERSE}})
    assert json.loads(decode(counted)) == {"inputTokens": 12}
    assert world.bedrock.calls[-1][0] == "count_tokens"

    lines = [line for line in world.logs if line["customer_id"] == cid]
    assert [line["api"] for line in lines] == ["invoke", "converse", "converse"]
    day = usage_items(world.ddb, world.tables, cid)
    assert sum(item.get("requests", 0) for k, item in day.items() if k.startswith("DAY#")) == 3


def test_count_tokens_is_free_but_takes_a_minute_slot(world):
    cid, token = customer(world, requests_per_minute=1)
    path = f"/model/{HAIKU}/count-tokens"
    body = {"input": {"converse": CONVERSE}}
    assert world.proxy.handle(event(body, token, path=path))["statusCode"] == 200
    refused = world.proxy.handle(event(body, token, path=path))
    assert refused["statusCode"] == 429
    assert refused["headers"]["x-amzn-ErrorType"] == "ThrottlingException"
    assert not [k for k in usage_items(world.ddb, world.tables, cid) if k.startswith("DAY#")]


def test_stage_root_answers_head_and_profiles_list_the_customers_models(world):
    head = world.proxy.handle(event(None, None, path="/", method="HEAD"))
    assert head["statusCode"] == 200
    cid, token = customer(world, allowed_models=[HAIKU, SONNET])
    listed = world.proxy.handle(
        event(None, token, path="/prod/inference-profiles", method="GET", version="2.0")
    )
    assert listed["statusCode"] == 200
    profiles = json.loads(decode(listed))["inferenceProfileSummaries"]
    assert {p["inferenceProfileId"] for p in profiles} == {"us." + HAIKU, "us." + SONNET}
    assert all(p["type"] == "SYSTEM_DEFINED" and p["status"] == "ACTIVE" for p in profiles)
    anonymous = world.proxy.handle(event(None, None, path="/inference-profiles", method="GET"))
    assert anonymous["statusCode"] == 403
    assert anonymous["headers"]["x-amzn-ErrorType"] == "AccessDeniedException"


@pytest.mark.parametrize(
    "limits, error_type, status",
    [
        ({"daily_request_limit": 0}, "ServiceQuotaExceededException", 400),
        ({"monthly_token_limit": 0}, "ServiceQuotaExceededException", 400),
        ({"monthly_budget": "0"}, "ServiceQuotaExceededException", 400),
        ({"requests_per_minute": 0}, "ThrottlingException", 429),
        ({"allowed_models": [SONNET]}, "AccessDeniedException", 403),
        ({"status": "suspended"}, "AccessDeniedException", 403),
    ],
)
def test_refusals_are_bedrock_exceptions(world, limits, error_type, status):
    cid, token = customer(world, **limits)
    response = world.proxy.handle(event(CLAUDE, token, path=f"/model/{HAIKU}/invoke"))
    assert response["statusCode"] == status
    assert response["headers"]["x-amzn-ErrorType"] == error_type
    message = json.loads(decode(response))["message"]
    assert message and (status == 403 or "resets at" in message)
    assert ("Retry-After" in response["headers"]) == (status == 429)


def test_bedrock_errors_keep_their_code_and_wording_without_arns(world):
    cid, token = customer(world)
    world.bedrock.error = (
        "ValidationException",
        "Invalid model arn:aws:bedrock:us-east-1:123456789012:foundation-model/x for 123456789012",
    )
    response = world.proxy.handle(event(CLAUDE, token, path=f"/model/{HAIKU}/invoke"))
    assert response["statusCode"] == 400
    assert response["headers"]["x-amzn-ErrorType"] == "ValidationException"
    message = json.loads(decode(response))["message"]
    assert "Invalid model" in message and "123456789012" not in message and "arn:" not in message


def test_a_stream_that_breaks_ends_with_an_exception_frame(world):
    cid, token = customer(world)
    world.bedrock.stream_error_after = 2
    response = world.proxy.handle(
        event(CLAUDE, token, path=f"/model/{HAIKU}/invoke-with-response-stream")
    )
    messages = frames(response)
    assert [m.message_type for m in messages] == ["event", "event", "exception"]
    assert messages[-1].headers[":exception-type"] == "modelStreamErrorException"
    assert world.logs[-1]["event_type"] == "bedrock_error"


def test_unknown_paths_and_methods_are_bedrock_errors(world):
    cid, token = customer(world)
    missing = world.proxy.handle(event(CLAUDE, token, path=f"/model/{HAIKU}/explode"))
    assert missing["statusCode"] == 404
    assert missing["headers"]["x-amzn-ErrorType"] == "UnknownOperationException"
    wrong = world.proxy.handle(event(None, token, path=f"/model/{HAIKU}/invoke", method="GET"))
    assert wrong["statusCode"] == 405


def test_client_bedrock_headers_become_parameters_and_unknown_ones_are_refused(world):
    cid, token = customer(world)
    headers = {
        "X-Amzn-Bedrock-Trace": "ENABLED",
        "X-Amzn-Bedrock-GuardrailIdentifier": "gr-1",
        "X-Amzn-Bedrock-GuardrailVersion": "1",
        "X-Amzn-Bedrock-Service-Tier": "priority",
    }
    path = f"/model/{HAIKU}/invoke"
    assert world.proxy.handle(event(CLAUDE, token, path=path, headers=headers))["statusCode"] == 200
    _, kwargs = world.bedrock.calls[-1]
    assert kwargs["trace"] == "ENABLED" and kwargs["guardrailIdentifier"] == "gr-1"
    assert kwargs["serviceTier"] == "priority"
    odd = {"X-Amzn-Bedrock-Teleport": "yes"}
    refused = world.proxy.handle(event(CLAUDE, token, path=path, headers=odd))
    assert refused["statusCode"] == 400 and len(world.bedrock.calls) == 1


def test_converse_blobs_reach_bedrock_as_bytes(world):
    cid, token = customer(world)
    image = base64.b64encode(b"\x89PNG fake").decode()
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"image": {"format": "png", "source": {"bytes": image}}}],
            }
        ]
    }
    response = world.proxy.handle(event(body, token, path=f"/model/{HAIKU}/converse"))
    assert response["statusCode"] == 200
    _, kwargs = world.bedrock.calls[-1]
    assert kwargs["messages"][0]["content"][0]["image"]["source"]["bytes"] == b"\x89PNG fake"
