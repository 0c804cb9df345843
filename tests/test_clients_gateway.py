"""The ``anthropic`` and ``openai`` SDKs, unchanged but for the base URL and the key,
through the real proxy (moto's server, the fake Bedrock, the local proxy server on plain
http over loopback, which both SDKs accept): Anthropic's Messages API and OpenAI's Chat
Completions, answers from the fake, counters and log lines with exactly its token counts,
and every refusal as the SDK's typed exception, retried only where that can help."""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from bedrock_billing.sandbox.proxy_server import ProxyServer
from tests.proxy_support import (
    HAIKU,
    SONNET,
    create_tables,
    put_customer,
    put_token,
    set_token_state,
    usage_items,
)
from tests.test_clients_bedrock import set_limits

anthropic = pytest.importorskip("anthropic")
openai = pytest.importorskip("openai")

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# A 1x1 PNG, as an image part would carry it.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def world(moto_server, aws_credentials):
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("gw" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    with FakeBedrock(seed=7) as fake:
        bedrock = boto3.client(
            "bedrock-runtime",
            endpoint_url=fake.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, signature_version="v4"),
            **CREDS,
        )
        logs: list[dict] = []
        logged = threading.Condition()

        def sink(line: dict) -> None:
            with logged:
                logs.append(line)
                logged.notify_all()

        proxy = Proxy(
            ProxyConfig(
                tables=tables,
                prices=PriceTable.from_env({}),
                region="us-east-1",
                auth_cache_ttl=0,
                negative_cache_ttl=0,
            ),
            dynamodb=ddb,
            bedrock_runtime=bedrock,
            log_sink=sink,
            admission_sink=[].append,  # the outcome lines only (one per request)
        )
        cid = put_customer(ddb, tables, daily_request_limit=50)
        token = put_token(ddb, tables, cid)
        server = ProxyServer(proxy)
        server.start()
        base = f"http://127.0.0.1:{server.port}/prod"
        try:
            world = _World(ddb, tables, cid, token, logs, fake, base)
            world.logged = logged
            yield world
        finally:
            server.stop()


class _World:
    def __init__(self, ddb, tables, cid, token, logs, fake, base):
        self.ddb, self.tables, self.cid, self.token = ddb, tables, cid, token
        self.logs, self.fake, self.base = logs, fake, base

    def anthropic(self, **kwargs):
        return anthropic.Anthropic(base_url=self.base, api_key=self.token, **kwargs)

    def openai(self, **kwargs):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=self.token, **kwargs)

    def assert_metered(self, wire_api: str, requests: int, model: str) -> list[dict]:
        def invoked():
            return [line for line in self.logs if line["event_type"] == "bedrock_invoke"]

        # A stream's line is written once its last event is out: a client that stops
        # reading at the last event may return first (waits on the sink, no sleep).
        with self.logged:
            self.logged.wait_for(lambda: len(invoked()) >= requests, timeout=10)
        lines = invoked()
        assert len(lines) == requests
        totals = {"input_tokens": 0, "output_tokens": 0}
        for line in lines:
            assert tuple(line) == FIELD_NAMES and line["wire_api"] == wire_api
            assert line["foundation_model"] == model and line["usage_estimated"] is False
            reported = self.fake.usage_by_request_id[line["bedrock_request_id"]]
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_write_input_tokens",
            ):
                assert line[key] == reported[key], key
            totals["input_tokens"] += reported["input_tokens"]
            totals["output_tokens"] += reported["output_tokens"]
        day = f"DAY#{datetime.now(UTC).date().isoformat()}#{model}"
        item = usage_items(self.ddb, self.tables, self.cid)[day]
        assert item["requests"] == requests
        assert item["input_tokens"] == totals["input_tokens"]
        assert item["output_tokens"] == totals["output_tokens"]
        return lines


# ---- the anthropic SDK: Messages


def test_anthropic_messages_create_with_an_anthropic_model_id(world):
    message = world.anthropic().messages.create(
        model="claude-3-haiku-20240307",
        max_tokens=100,
        system="Be brief.",
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u-1"},  # dropped: Bedrock has no such field
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    reported = world.fake.calls[0]
    assert reported["model_id"] == HAIKU and reported["api"] == "InvokeModel"
    assert message.usage.input_tokens == reported["input_tokens"]
    assert message.usage.output_tokens == reported["output_tokens"]
    assert len(message.content[0].text.split()) == reported["output_tokens"]  # a word a token
    (line,) = world.assert_metered("anthropic-messages", 1, HAIKU)
    assert line["model_id"] == "claude-3-haiku-20240307"  # both names: as sent, foundation


def test_anthropic_messages_stream_text_and_a_tool_call(world):
    client = world.anthropic()
    with client.messages.stream(
        model="claude-3-haiku-latest",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and final.usage.output_tokens > 0
    # A turn that carries a tool, the model's call of it and the tool's result.
    with client.messages.stream(
        model=HAIKU,
        max_tokens=100,
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "tu_1", "name": "get_weather",
                     "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1", "content": "Sunny, 21C"}
                ],
            },
        ],
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and "content_block_delta" in events
    assert final.usage.output_tokens == world.fake.calls[-1]["output_tokens"]
    world.assert_metered("anthropic-messages", 2, HAIKU)
    assert all(line["streamed"] for line in world.logs)


def test_anthropic_cache_tokens_are_metered(world):
    client = world.anthropic()
    system = [{"type": "text", "text": "x" * 6000, "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        message = client.messages.create(
            model=HAIKU, max_tokens=20, system=system,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert message.usage.cache_read_input_tokens > 0
    world.assert_metered("anthropic-messages", 2, HAIKU)


def test_anthropic_count_tokens_is_free_and_matches_the_answer(world):
    client = world.anthropic()
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    counted = client.messages.count_tokens(model="claude-3-haiku-20240307", messages=prompt)
    message = client.messages.create(model=HAIKU, max_tokens=20, messages=prompt)
    assert counted.input_tokens == message.usage.input_tokens > 0
    world.assert_metered("anthropic-messages", 1, HAIKU)  # the count is not a request


def test_claude_code_style_request_drops_what_bedrock_refuses(world):
    """Claude Code's Messages mode: a Bearer token, ?beta=true, betas Bedrock does not know,
    context_management and output_config.effort: dropped, and the call is served."""
    client = anthropic.Anthropic(base_url=world.base, auth_token=world.token)
    message = client.messages.create(
        model="claude-3-haiku-20240307",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
            "context-management-2025-06-27"
        },
        extra_query={"beta": "true"},
        extra_body={"context_management": {"edits": []}, "output_config": {"effort": "high"}},
    )
    assert message.content[0].text
    world.assert_metered("anthropic-messages", 1, HAIKU)


def test_anthropic_refusals_are_typed_and_the_daily_limit_is_not_retried(world):
    set_limits(world, daily_request_limit=1)
    client = world.anthropic()  # default retries: 2
    client.messages.create(model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "a"}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "b"}]
        )
    assert "daily request limit" in str(caught.value)
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(world.logs) == 2  # one request at the proxy for the refusal
    set_limits(world, daily_request_limit=50, requests_per_minute=1)
    quick = world.anthropic(max_retries=0)
    quick.messages.create(model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "c"}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        quick.messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "c"}]
        )
    assert "requests-per-minute" in str(caught.value)
    assert int(caught.value.response.headers["retry-after"]) >= 0
    set_limits(world, requests_per_minute=1000, monthly_budget="0")
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "d"}]
        )
    assert "budget" in str(caught.value)
    set_limits(world, monthly_budget="100", allowed_models=[SONNET])
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "e"}]
        )
    assert caught.value.body["error"]["type"] == "permission_error"
    set_token_state(world.ddb, world.tables, world.token, "revoked")
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(
            model=SONNET, max_tokens=20, messages=[{"role": "user", "content": "f"}]
        )


def test_bedrock_error_wording_reaches_the_anthropic_sdk(world):
    world.fake.fail_next("validation", message="messages: field required")
    with pytest.raises(anthropic.BadRequestError) as caught:
        world.anthropic().messages.create(
            model=HAIKU, max_tokens=20, messages=[{"role": "user", "content": "a"}]
        )
    assert "field required" in str(caught.value)


# ---- the openai SDK: Chat Completions


def test_openai_chat_completion_text_tools_and_image(world):
    client = world.openai()
    answer = client.chat.completions.create(
        model=SONNET,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=100,
        temperature=0.2,
        user="u-1",  # ignored
    )
    reported = world.fake.calls[-1]
    assert reported["api"] == "Converse"
    assert answer.usage.completion_tokens == reported["output_tokens"]
    assert answer.usage.prompt_tokens == reported["input_tokens"]
    assert len(answer.choices[0].message.content.split()) == reported["output_tokens"]
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "parameters": WEATHER["input_schema"]}}]
    answer = client.chat.completions.create(
        model=SONNET,
        tools=tools,
        tool_choice="auto",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21C"},
        ],
    )
    assert answer.choices[0].finish_reason in ("stop", "length")
    answer = client.chat.completions.create(
        model=SONNET,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]}],
    )
    assert answer.choices[0].message.content
    world.assert_metered("openai-chat", 3, SONNET)


def test_openai_stream_with_usage_and_models_list(world):
    client = world.openai()
    chunks = list(
        client.chat.completions.create(
            model=SONNET,
            messages=[{"role": "user", "content": "Hello"}],
            max_completion_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens == world.fake.calls[-1]["output_tokens"]
    assert len(text.split()) == world.fake.calls[-1]["output_tokens"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    (line,) = world.assert_metered("openai-chat", 1, SONNET)
    assert line["streamed"] is True
    ids = [m.id for m in client.models.list()]
    assert HAIKU in ids and "claude-3-haiku-20240307" in ids
    assert len(world.logs) == 1  # the list is not a request


def test_openai_refusals_are_typed_and_the_daily_limit_is_not_retried(world):
    set_limits(world, daily_request_limit=1)
    client = world.openai()  # default retries: 2
    prompt = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model=SONNET, messages=prompt)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=SONNET, messages=prompt)
    assert "daily request limit" in str(caught.value)
    assert len(world.logs) == 2
    set_limits(world, daily_request_limit=50, requests_per_minute=1)
    quick = world.openai(max_retries=0)
    quick.chat.completions.create(model=SONNET, messages=prompt)
    with pytest.raises(openai.RateLimitError) as caught:
        quick.chat.completions.create(model=SONNET, messages=prompt)
    assert caught.value.code == "requests_per_minute_exceeded"
    set_limits(world, requests_per_minute=1000, monthly_budget="0")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=SONNET, messages=prompt)
    assert caught.value.type == "insufficient_quota"
    set_limits(world, monthly_budget="100", allowed_models=[HAIKU])
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=SONNET, messages=prompt)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=HAIKU, messages=prompt, n=2)
    assert caught.value.param == "n"
    set_token_state(world.ddb, world.tables, world.token, "revoked")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=HAIKU, messages=prompt)
