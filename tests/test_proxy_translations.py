"""The translations, table-driven: OpenAI Chat Completions to Converse and back, Anthropic
Messages to InvokeModel and back (bodies, stream events, refusals), and the model names."""

from __future__ import annotations

import base64
import json

import pytest

from bedrock_billing.core.model_names import ModelNames
from bedrock_billing.proxy.apis import anthropic_messages as am
from bedrock_billing.proxy.apis import openai_chat as oc
from bedrock_billing.proxy.call import Call, StreamEvent
from bedrock_billing.proxy.errors import ProxyError

HI = [{"role": "user", "content": "hi"}]
CONVERSE_HI = [{"role": "user", "content": [{"text": "hi"}]}]
PNG = base64.b64encode(b"\x89PNG fake").decode()
FN = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {
    "type": "object"}}}
SPEC = {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}, "description": "d"}}

OPENAI_TO_CONVERSE = [
    ("plain", {"messages": HI}, {"messages": CONVERSE_HI}),
    ("system", {"messages": [{"role": "system", "content": "s"}, *HI]},
     {"messages": CONVERSE_HI, "system": [{"text": "s"}]}),
    ("developer", {"messages": [{"role": "developer", "content": [{"type": "text", "text": "s"}]},
                                *HI]},
     {"messages": CONVERSE_HI, "system": [{"text": "s"}]}),
    ("max_tokens", {"messages": HI, "max_tokens": 5},
     {"messages": CONVERSE_HI, "inferenceConfig": {"maxTokens": 5}}),
    ("max_completion_tokens wins", {"messages": HI, "max_tokens": 5, "max_completion_tokens": 7},
     {"messages": CONVERSE_HI, "inferenceConfig": {"maxTokens": 7}}),
    ("sampling", {"messages": HI, "temperature": 0.5, "top_p": 0.9},
     {"messages": CONVERSE_HI, "inferenceConfig": {"temperature": 0.5, "topP": 0.9}}),
    ("stop string", {"messages": HI, "stop": "END"},
     {"messages": CONVERSE_HI, "inferenceConfig": {"stopSequences": ["END"]}}),
    ("stop list", {"messages": HI, "stop": ["a", "b"]},
     {"messages": CONVERSE_HI, "inferenceConfig": {"stopSequences": ["a", "b"]}}),
    ("image", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]},
     {"messages": [{"role": "user", "content": [
         {"text": "what?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]}]}),
    ("jpg image", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}}]}]},
     {"messages": [{"role": "user", "content": [
         {"image": {"format": "jpeg", "source": {"bytes": PNG}}}]}]}),
    ("tools auto", {"messages": HI, "tools": [FN], "tool_choice": "auto"},
     {"messages": CONVERSE_HI, "toolConfig": {"tools": [SPEC]}}),
    ("tools required", {"messages": HI, "tools": [FN], "tool_choice": "required"},
     {"messages": CONVERSE_HI, "toolConfig": {"tools": [SPEC], "toolChoice": {"any": {}}}}),
    ("tools named", {"messages": HI, "tools": [FN],
                     "tool_choice": {"type": "function", "function": {"name": "f"}}},
     {"messages": CONVERSE_HI,
      "toolConfig": {"tools": [SPEC], "toolChoice": {"tool": {"name": "f"}}}}),
    ("tools none", {"messages": HI, "tools": [FN], "tool_choice": "none"},
     {"messages": CONVERSE_HI}),
    ("tool call and result", {"messages": [
        *HI,
        {"role": "assistant", "content": "let me look", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "43"}]}]},
     {"messages": [
         *CONVERSE_HI,
         {"role": "assistant", "content": [
             {"text": "let me look"},
             {"toolUse": {"toolUseId": "c1", "name": "f", "input": {"x": 1}}}]},
         {"role": "user", "content": [
             {"toolResult": {"toolUseId": "c1", "content": [{"text": "42"}]}},
             {"toolResult": {"toolUseId": "c2", "content": [{"text": "43"}]}}]}]}),
    ("consecutive users merge", {"messages": [*HI, *HI]},
     {"messages": [{"role": "user", "content": [{"text": "hi"}, {"text": "hi"}]}]}),
    ("json_object", {"messages": HI, "response_format": {"type": "json_object"}},
     {"messages": CONVERSE_HI, "outputConfig": {"textFormat": {"type": "json_schema",
      "structure": {"jsonSchema": {"schema": '{"type": "object"}', "name": "json_object"}}}}}),
    ("json_schema", {"messages": HI, "response_format": {"type": "json_schema", "json_schema": {
        "name": "a", "schema": {"type": "string"}}}},
     {"messages": CONVERSE_HI, "outputConfig": {"textFormat": {"type": "json_schema",
      "structure": {"jsonSchema": {"schema": '{"type": "string"}', "name": "a"}}}}}),
    ("response_format text", {"messages": HI, "response_format": {"type": "text"}},
     {"messages": CONVERSE_HI}),
    ("ignored", {"messages": HI, "user": "u", "store": False, "seed": 3,
                 "parallel_tool_calls": True, "metadata": {"a": "b"}},
     {"messages": CONVERSE_HI}),
    ("neutral values", {"messages": HI, "n": 1, "logprobs": False, "frequency_penalty": 0,
                        "presence_penalty": 0.0, "logit_bias": {}},
     {"messages": CONVERSE_HI}),
]

OPENAI_REFUSED = [
    ("n", {"messages": HI, "n": 2}),
    ("logprobs", {"messages": HI, "logprobs": True}),
    ("frequency_penalty", {"messages": HI, "frequency_penalty": 0.5}),
    ("logit_bias", {"messages": HI, "logit_bias": {"1": 5}}),
    ("functions", {"messages": HI, "functions": []}),
    ("messages", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
    ("messages", {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
]


@pytest.mark.parametrize("name,request_body,expected", OPENAI_TO_CONVERSE,
                         ids=[c[0] for c in OPENAI_TO_CONVERSE])
def test_openai_to_converse(name, request_body, expected):
    assert oc.to_converse({"model": "m", **request_body}) == expected


@pytest.mark.parametrize("param,request_body", OPENAI_REFUSED,
                         ids=[f"refused-{c[0]}-{i}" for i, c in enumerate(OPENAI_REFUSED)])
def test_openai_refuses_what_would_change_the_answer(param, request_body):
    with pytest.raises(ProxyError) as caught:
        oc.to_converse(request_body)
    assert caught.value.status == 400 and caught.value.param == param


def _call(**options):
    return Call("converse", "my-model", options={"id": "chatcmpl-1", "created": 5, "tools": {},
                                                 **options})


CONVERSE_TO_OPENAI = [
    ("text", {"output": {"message": {"content": [{"text": "Paris"}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 3, "outputTokens": 1}},
     {"role": "assistant", "content": "Paris"}, "stop",
     {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
      "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}),
    ("length", {"output": {"message": {"content": [{"text": "a"}, {"text": "b"}]}},
                "stopReason": "max_tokens", "usage": {"inputTokens": 1, "outputTokens": 2,
                                                      "cacheReadInputTokens": 10,
                                                      "cacheWriteInputTokens": 4}},
     {"role": "assistant", "content": "ab"}, "length",
     {"prompt_tokens": 15, "completion_tokens": 2, "total_tokens": 17,
      "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 4}}),
    ("tool call", {"output": {"message": {"content": [
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}}]}},
        "stopReason": "tool_use", "usage": {}},
     {"role": "assistant", "content": None, "tool_calls": [
         {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]},
     "tool_calls",
     {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
      "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}),
    ("guardrail", {"output": {"message": {"content": [{"text": "no"}]}},
                   "stopReason": "guardrail_intervened", "usage": {}},
     {"role": "assistant", "content": "no"}, "content_filter", None),
]


@pytest.mark.parametrize("name,answer,message,finish,use", CONVERSE_TO_OPENAI,
                         ids=[c[0] for c in CONVERSE_TO_OPENAI])
def test_converse_to_openai(name, answer, message, finish, use):
    out = oc.from_converse(answer, _call())
    assert out["object"] == "chat.completion" and out["model"] == "my-model"
    assert out["choices"][0]["message"] == message
    assert out["choices"][0]["finish_reason"] == finish
    if use is not None:
        assert out["usage"] == use


def _sse(raw: bytes) -> list:
    return [json.loads(line[6:]) for line in raw.decode().splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def test_converse_stream_to_openai_chunks():
    adapter, call = oc.CHAT_COMPLETIONS, _call(include_usage=True)
    events = [
        StreamEvent("messageStart", {"role": "assistant"}),
        StreamEvent("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        StreamEvent("contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "t1", "name": "f"}}}),
        StreamEvent("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
            "toolUse": {"input": '{"x":'}}}),
        StreamEvent("contentBlockStop", {"contentBlockIndex": 1}),
        StreamEvent("messageStop", {"stopReason": "tool_use"}),
        StreamEvent("metadata", {"usage": {"inputTokens": 2, "outputTokens": 3}}),
    ]
    raw = b"".join(adapter.encode_event(call, e) for e in events) + adapter.encode_end(call)
    chunks = _sse(raw)
    assert raw.endswith(b"data: [DONE]\n\n")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Hi"}
    assert deltas[2]["tool_calls"][0] == {"index": 0, "id": "t1", "type": "function",
                                          "function": {"name": "f", "arguments": ""}}
    assert deltas[3]["tool_calls"][0] == {"index": 0, "function": {"arguments": '{"x":'}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5


def test_openai_stream_without_include_usage_has_no_usage_chunk():
    chunk = oc.CHAT_COMPLETIONS.encode_event(_call(), StreamEvent("metadata", {"usage": {}}))
    assert chunk == b""


# ---- Anthropic Messages <-> InvokeModel

MSG = [{"role": "user", "content": "hi"}]
BASE = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": MSG}

MESSAGES_TO_INVOKE = [
    ("plain", {"max_tokens": 10, "messages": MSG}, None, BASE),
    ("model and stream out", {"model": "claude-3-haiku-20240307", "stream": True,
                              "max_tokens": 10, "messages": MSG}, None, BASE),
    ("system and sampling", {"max_tokens": 10, "messages": MSG, "system": "s",
                             "temperature": 0.1, "top_p": 0.5, "top_k": 3,
                             "stop_sequences": ["x"]}, None,
     {**BASE, "system": "s", "temperature": 0.1, "top_p": 0.5, "top_k": 3,
      "stop_sequences": ["x"]}),
    ("metadata dropped", {"max_tokens": 10, "messages": MSG, "metadata": {"user_id": "u"}},
     None, BASE),
    ("context_management dropped", {"max_tokens": 10, "messages": MSG,
                                    "context_management": {"edits": []}}, None, BASE),
    ("effort dropped", {"max_tokens": 10, "messages": MSG, "output_config": {"effort": "low"}},
     None, BASE),
    ("output format kept", {"max_tokens": 10, "messages": MSG,
                            "output_config": {"effort": "low", "format": {"type": "json"}}},
     None, {**BASE, "output_config": {"format": {"type": "json"}}}),
    ("betas filtered", {"max_tokens": 10, "messages": MSG}, "claude-code-20250219, "
     "interleaved-thinking-2025-05-14,context-management-2025-06-27,fine-grained-tool-"
     "streaming-2025-05-14", {**BASE, "anthropic_beta": ["interleaved-thinking-2025-05-14"]}),
    ("thinking", {"max_tokens": 10, "messages": MSG, "thinking": {"type": "enabled",
                                                                  "budget_tokens": 5}},
     None, {**BASE, "thinking": {"type": "enabled", "budget_tokens": 5}}),
    ("custom tool trimmed", {"max_tokens": 10, "messages": MSG, "tool_choice": {"type": "any"},
                             "tools": [{"name": "f", "input_schema": {}, "eager_input_streaming":
                                        True, "cache_control": {"type": "ephemeral"}}]},
     None, {**BASE, "tool_choice": {"type": "any"},
            "tools": [{"name": "f", "input_schema": {}, "cache_control": {"type": "ephemeral"}}]}),
    ("bedrock tool type kept", {"max_tokens": 10, "messages": MSG,
                                "tools": [{"type": "bash_20241022", "name": "bash"}]},
     None, {**BASE, "tools": [{"type": "bash_20241022", "name": "bash"}]}),
]


@pytest.mark.parametrize("name,body,beta,expected", MESSAGES_TO_INVOKE,
                         ids=[c[0] for c in MESSAGES_TO_INVOKE])
def test_messages_to_invoke_model(name, body, beta, expected):
    assert am.to_bedrock(body, beta) == expected


@pytest.mark.parametrize("field", ["mcp_servers", "container", "frobnicate"])
def test_messages_refuses_what_bedrock_cannot_run(field):
    with pytest.raises(ProxyError) as caught:
        am.to_bedrock({"max_tokens": 1, "messages": MSG, field: {}}, None)
    assert caught.value.status == 400 and field in caught.value.message


def test_messages_stream_events_are_anthropic_sse():
    call = Call("invoke", "m", stream=True)
    start = am.MESSAGES.encode_event(call, StreamEvent("chunk", {"type": "message_start",
                                                                  "message": {"id": "x"}}))
    assert start.startswith(b"event: message_start\ndata: ")
    assert b"event: ping\ndata: {\"type\":\"ping\"}" in start
    stop = am.MESSAGES.encode_event(call, StreamEvent("chunk", {
        "type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 1}}))
    assert stop == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    err = am.MESSAGES.encode_error(call, ProxyError(502, "model_error", "boom"), "r")
    assert err.startswith(b"event: error\n") and b'"type":"api_error"' in err


REFUSALS = [
    (ProxyError(429, "daily_request_limit_exceeded", "d", limit="daily_request_limit",
                retry_after=600), 429, "rate_limit_error", "insufficient_quota",
     {"x-should-retry": "false"}),
    (ProxyError(429, "requests_per_minute_exceeded", "m", limit="requests_per_minute",
                retry_after=30), 429, "rate_limit_error", "rate_limit_error",
     {"Retry-After": "30"}),
    (ProxyError(429, "monthly_budget_exceeded", "b", limit="monthly_budget", retry_after=9),
     429, "rate_limit_error", "insufficient_quota", {"x-should-retry": "false"}),
    (ProxyError(403, "model_not_allowed", "n", limit="allowed_models"), 403,
     "permission_error", "permission_error", {}),
    (ProxyError(401, "token_revoked", "r"), 401, "authentication_error",
     "authentication_error", {}),
    (ProxyError(404, "not_found", "nf"), 404, "not_found_error", "not_found_error", {}),
    (ProxyError(400, "bedrock_validation_error", "x", aws_code="ValidationException",
                aws_message="messages: field required"), 400, "invalid_request_error",
     "invalid_request_error", {}),
]


@pytest.mark.parametrize("err,status,anthropic_type,openai_type,extra", REFUSALS,
                         ids=[r[0].code for r in REFUSALS])
def test_refusals_in_each_api_shape(err, status, anthropic_type, openai_type, extra):
    a = am.MESSAGES.refuse(err, "req-1", {})
    o = oc.CHAT_COMPLETIONS.refuse(err, "req-1", {})
    assert a["statusCode"] == o["statusCode"] == status
    body = json.loads(a["body"])
    assert body["type"] == "error" and body["error"]["type"] == anthropic_type
    assert json.loads(o["body"])["error"]["type"] == openai_type
    message = err.aws_message or err.message
    assert body["error"]["message"] == json.loads(o["body"])["error"]["message"] == message
    for name, value in extra.items():
        assert a["headers"][name] == o["headers"][name] == value
    if "x-should-retry" not in extra:
        assert "x-should-retry" not in a["headers"]


MODEL_NAMES = [
    ("claude-3-haiku-20240307", "us-east-1", "anthropic.claude-3-haiku-20240307-v1:0"),
    ("claude-3-5-haiku-latest", "us-east-1", "anthropic.claude-3-5-haiku-20241022-v1:0"),
    ("claude-sonnet-4-5", "us-east-1", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("claude-sonnet-4-5-20250929", "eu-west-1", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "us-east-1",
     "anthropic.claude-3-haiku-20240307-v1:0"),
    ("us.amazon.nova-lite-v1:0", "us-east-1", "us.amazon.nova-lite-v1:0"),
]


@pytest.mark.parametrize("name,region,expected", MODEL_NAMES, ids=[m[0] for m in MODEL_NAMES])
def test_model_names(name, region, expected):
    assert ModelNames(region).resolve(name) == expected


def test_operator_model_names_extend_and_override():
    names = ModelNames.from_env(
        {"BEDROCK_BILLING_MODEL_NAMES": json.dumps({"fast": "amazon.nova-micro-v1:0",
                                                    "claude-sonnet-4-5": "global.x.y"})},
        "us-east-1",
    )
    assert names.resolve("fast") == "amazon.nova-micro-v1:0"
    assert names.resolve("claude-sonnet-4-5") == "global.x.y"
    assert names.resolve("claude-3-haiku-20240307") == "anthropic.claude-3-haiku-20240307-v1:0"


def test_deploy_hands_the_operator_model_names_to_the_proxy():
    from bedrock_billing.core.errors import InvalidInput
    from bedrock_billing.deploy.config import DeployConfig, validate
    from bedrock_billing.proxy.config import ProxyConfig

    table = json.dumps({"fast": "amazon.nova-micro-v1:0"})
    cfg = DeployConfig(models=("amazon.nova-micro-v1:0",), model_names_json=table)
    validate(cfg)
    env = cfg.environment()
    assert env["BEDROCK_BILLING_MODEL_NAMES"] == table
    proxy = ProxyConfig.from_env({**env, "AWS_REGION": "eu-west-1"})
    assert proxy.model_names.resolve("fast") == "amazon.nova-micro-v1:0"
    assert proxy.model_names.resolve("claude-haiku-4-5").startswith("eu.anthropic.")
    with pytest.raises(InvalidInput, match="model names"):
        validate(DeployConfig(models=("amazon.nova-micro-v1:0",), model_names_json="[1]"))
