"""Property, per new route (Messages, count_tokens, Chat Completions, the model list):
whatever body or headers arrive, the answer is the model's 200 or a 4xx in that API's error
shape: never a 5xx, a traceback or the token."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_billing.fakebedrock import FakeBedrock
from tests import proxy_support
from tests.proxy_support import HAIKU, put_customer, put_token
from tests.test_proxy_fuzz import json_values

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world
TOKEN = "bbk_fuzz-gateway-0123456789abcdefghijklmnopqrstuvwxyz"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

models = st.sampled_from([HAIKU, "claude-3-haiku-20240307", "claude-3-haiku-latest", "us." + HAIKU,
                          "amazon.nova-lite-v1:0"]) | json_values
text_or_parts = st.text(max_size=20) | st.lists(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "image", "tool_result"]),
                           "text": st.text(max_size=10)}) | json_values, max_size=3)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]),
                           "content": text_or_parts}) | json_values,
    max_size=3,
)
known = st.sampled_from([
    "max_tokens", "stream", "temperature", "tools", "tool_choice", "system", "stop",
    "stop_sequences", "n", "response_format", "metadata", "thinking", "user", "top_p",
    "stream_options", "context_management", "output_config", "logprobs",
])
bodies = st.builds(
    lambda model, msgs, extra: json.dumps({"model": model, "messages": msgs, **extra}),
    models,
    messages,
    st.dictionaries(known | st.text(max_size=8), json_values, max_size=4),
) | st.text(max_size=50) | json_values.map(json.dumps)
auth = st.sampled_from([
    {"x-api-key": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}, {"x-api-key": ""},
    {"x-api-key": "bad key"}, {}, {"Authorization": "Basic x"},
])
betas = st.none() | st.text(max_size=30) | st.just("interleaved-thinking-2025-05-14,x")


def _event(path: str, method: str, body, headers: dict) -> dict:
    return {
        "httpMethod": method,
        "path": path,
        "headers": {"Content-Type": "application/json", **headers},
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "r-9"},
    }


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock(seed=3, output_tokens=4) as fake:
        yield fake


@pytest.mark.parametrize(
    "path,method",
    [("/prod/v1/messages", "POST"), ("/v1/messages/count_tokens", "POST"),
     ("/prod/v1/chat/completions", "POST"), ("/v1/models", "GET")],
)
def test_no_body_gets_a_5xx_or_leaks_the_token(world, fake_bedrock, path, method):
    world.proxy._bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    cid = put_customer(world.ddb, world.tables)
    put_token(world.ddb, world.tables, cid, token=TOKEN)
    anthropic_shape = "/v1/messages" in path or path.endswith("/models")

    @FUZZ
    @given(bodies, auth, betas)
    def check(body, headers, beta):
        if beta is not None:
            headers = {**headers, "anthropic-beta": beta}
        response = world.proxy.handle(_event(path, method, body, headers))
        status = response["statusCode"]
        raw = response["body"]
        if response.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8", "replace")
        assert 200 <= status < 500, (body, response)
        assert TOKEN not in raw and TOKEN not in json.dumps(response["headers"])
        assert "Traceback" not in raw
        if status >= 400:
            error = json.loads(raw)
            if anthropic_shape:
                assert error["type"] == "error" and error["error"]["message"]
            else:
                assert error["error"]["message"] and error["error"]["type"]

    check()
