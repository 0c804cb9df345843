"""The Messages / Chat Completions / model-list routes as Lambda events (REST 1.0 and HTTP
2.0, under a stage prefix and under none), count_tokens through Bedrock's CountTokens, and
the key as x-api-key; no DynamoDB call beyond the one pipeline's."""

from __future__ import annotations

import base64
import json

import pytest

from tests import proxy_support
from tests.proxy_support import HAIKU, event, put_customer, put_token

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world

MESSAGE = {"model": "claude-3-haiku-20240307", "max_tokens": 20,
           "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": HAIKU, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def token(world):
    cid = put_customer(world.ddb, world.tables)
    return put_token(world.ddb, world.tables, cid)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("prefix", ["", "/prod", "/custom/base"])
def test_messages_and_chat_under_any_prefix(world, token, version, prefix):
    answer = world.proxy.handle(event(MESSAGE, path=prefix + "/v1/messages", version=version,
                                      headers={"x-api-key": token}))
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["id"] == "msg_1"
    assert world.bedrock.calls[-1][1]["modelId"] == HAIKU
    answer = world.proxy.handle(event(CHAT, token, path=prefix + "/v1/chat/completions",
                                      version=version))
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["object"] == "chat.completion"
    assert [line["wire_api"] for line in world.logs] == ["anthropic-messages", "openai-chat"]


def test_new_routes_add_no_dynamodb_call(world, token):
    legacy_body = {"modelId": HAIKU, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    seen = []
    for body, path, headers in (
        (legacy_body, "/bedrock/converse", {}),  # warms the token cache
        (legacy_body, "/bedrock/converse", {}),
        (CHAT, "/v1/chat/completions", {}),
        (MESSAGE, "/v1/messages", {"x-api-key": token}),
    ):
        world.calls.clear()
        answer = world.proxy.handle(event(body, None if headers else token, path=path,
                                          headers=headers))
        assert answer["statusCode"] == 200, answer
        seen.append(sorted(world.calls))
    assert seen[1] == seen[2] == seen[3] and seen[1]


def test_count_tokens_uses_bedrock_count_tokens_with_the_foundation_id(world, token):
    seen = {}

    def count_tokens(**params):
        seen.update(params)
        return {"inputTokens": 42, "ResponseMetadata": {"RequestId": "b-1", "HTTPHeaders": {}}}

    world.bedrock.count_tokens = count_tokens
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    beta = {"anthropic-beta": "token-efficient-tools-2025-02-19"}
    path = "/prod/v1/messages/count_tokens"
    answer = world.proxy.handle(event(body, token, path=path, headers=beta))
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"input_tokens": 42}
    assert seen["modelId"] == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    sent = json.loads(seen["input"]["invokeModel"]["body"])
    assert sent["anthropic_version"] == "bedrock-2023-05-31" and sent["max_tokens"] == 1
    assert sent["anthropic_beta"] == ["token-efficient-tools-2025-02-19"]
    assert world.logs == []  # free calls are not usage


def test_models_list_fits_openai_and_anthropic(world):
    cid = put_customer(world.ddb, world.tables, allowed_models=[HAIKU])
    token = put_token(world.ddb, world.tables, cid)
    answer = world.proxy.handle(event(None, token, path="/prod/v1/models", method="GET"))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and body["object"] == "list" and body["has_more"] is False
    ids = [m["id"] for m in body["data"]]
    assert ids == ["claude-3-haiku-20240307", HAIKU]
    first = body["data"][0]
    assert first["type"] == first["object"] == "model" and first["display_name"] == "Claude 3 Haiku"
    assert first["created_at"] == "2024-03-07T00:00:00Z" and first["owned_by"] == "anthropic"
    assert body["first_id"] == ids[0] and body["last_id"] == ids[-1]
    denied = world.proxy.handle(event(None, "bbk_nope", path="/v1/models", method="GET"))
    assert denied["statusCode"] == 401 and json.loads(denied["body"])["type"] == "error"


def test_errors_before_a_route_take_the_api_shape(world, token):
    answer = world.proxy.handle(event(None, token, path="/v1/chat/completions", method="GET"))
    assert answer["statusCode"] == 405 and "error" in json.loads(answer["body"])
    answer = world.proxy.handle(event("{", token, path="/v1/messages"))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and body["error"]["type"] == "invalid_request_error"
    answer = world.proxy.handle(event(MESSAGE, path="/v1/messages"))
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"]["type"] == "authentication_error"


def test_buffered_streams_for_lambda(world, token):
    answer = world.proxy.handle(event(dict(MESSAGE, stream=True), token, path="/v1/messages"))
    raw = base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()
    assert answer["headers"]["Content-Type"] == "text/event-stream"
    assert raw.startswith(b"event: message_start\n") and b"event: message_stop" in raw
    answer = world.proxy.handle(event(dict(CHAT, stream=True), token, path="/v1/chat/completions"))
    raw = base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()
    assert raw.endswith(b"data: [DONE]\n\n") and b"chat.completion.chunk" in raw
