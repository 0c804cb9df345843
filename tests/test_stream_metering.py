"""Streams that end without Bedrock's final metrics, and clients that hang up mid-stream:
the usage is what the stream carried, never the JSON around it, and a generation the client
left is still metered from Bedrock's own count (issue 13, item 3).

The fake Bedrock cuts a ``stream_truncated`` answer after half its text and records, by its
own tokenizer (a word a token), how many output tokens it delivered; the proxy must bill
within 5% of that, flagged as estimated, for every model family and for ConverseStream.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import boto3
import pytest

from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from tests.proxy_support import (
    FAKE_CREDS,
    create_tables,
    event,
    proxy_before_fake,
    put_customer,
    put_token,
    usage_items,
)

CREDS = FAKE_CREDS
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-text-express-v1"
LLAMA = "meta.llama3-8b-instruct-v1:0"
MISTRAL = "mistral.mistral-7b-instruct-v0:2"
NOVA = "amazon.nova-lite-v1:0"
PROMPT = "Tell me everything about metering a stream."


def family_body(model: str, max_tokens: int) -> dict:
    if model.startswith("anthropic"):
        return {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    if model.startswith("amazon.titan"):
        return {"inputText": PROMPT, "textGenerationConfig": {"maxTokenCount": max_tokens}}
    if model.startswith("meta"):
        return {"prompt": PROMPT, "max_gen_len": max_tokens}
    if model.startswith("mistral"):
        return {"prompt": f"<s>[INST] {PROMPT} [/INST]", "max_tokens": max_tokens}
    return {
        "schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }


def converse_body(max_tokens: int) -> dict:
    return {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock(seed=13) as server:
        yield server


@pytest.fixture
def stack(moto_server, fake, aws_credentials):
    fake.reset()
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("st" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    # the outcome lines only (one per request)
    proxy, logs = proxy_before_fake(ddb, tables, fake.url, admission_sink=[].append)
    cid = put_customer(ddb, tables, daily_request_limit=50)
    token = put_token(ddb, tables, cid)

    def day(model: str) -> dict:
        [item] = [v for k, v in usage_items(ddb, tables, cid).items() if k.endswith("#" + model)]
        return item

    class Stack:
        pass

    s = Stack()
    s.proxy, s.logs, s.token, s.day, s.fake = proxy, logs, token, day, fake
    return s


def stream_event(model: str, body: dict, token: str, converse: bool = False) -> dict:
    op = "converse-stream" if converse else "invoke-with-response-stream"
    return event(body, token, path=f"/model/{quote(model, safe='')}/{op}")


FAMILIES = {HAIKU: "anthropic", TITAN: "titan", LLAMA: "llama", MISTRAL: "mistral", NOVA: "nova"}


def cut_stream_cases():
    for model, family in FAMILIES.items():
        for max_tokens in (16, 200):
            yield pytest.param(model, False, max_tokens, id=f"{family}-{max_tokens}")
    for model in (HAIKU, NOVA):
        for max_tokens in (16, 200):
            name = f"converse-{FAMILIES[model]}-{max_tokens}"
            yield pytest.param(model, True, max_tokens, id=name)


@pytest.mark.parametrize(("model", "converse", "max_tokens"), list(cut_stream_cases()))
def test_a_stream_cut_before_its_metrics_is_billed_what_it_delivered(
    stack, model, converse, max_tokens
):
    stack.fake.fail_next("stream_truncated")
    body = converse_body(max_tokens) if converse else family_body(model, max_tokens)
    response = stack.proxy.handle(stream_event(model, body, stack.token, converse))
    assert response["statusCode"] == 200
    [line] = stack.logs
    record = stack.fake.usage_by_request_id[line["bedrock_request_id"]]
    assert record["fault"] == "stream_truncated" and record["metrics_reported"] is False
    delivered = record["delivered_output_tokens"]
    assert delivered > 0
    assert abs(line["output_tokens"] - delivered) <= 0.05 * delivered, (
        line["output_tokens"],
        delivered,
    )
    assert line["usage_estimated"] is True and line["status"] == 200
    day = stack.day(model)
    assert day["output_tokens"] == line["output_tokens"]
    assert day["estimated"] == 1 and day["requests"] == 1


def test_anthropic_cut_stream_keeps_the_exact_input_of_message_start(stack):
    stack.fake.fail_next("stream_truncated")
    stack.proxy.handle(stream_event(HAIKU, family_body(HAIKU, 200), stack.token))
    [line] = stack.logs
    record = stack.fake.usage_by_request_id[line["bedrock_request_id"]]
    assert line["input_tokens"] == record["input_tokens"]


class HangingUpWriter:
    """The local server's writer on a socket whose client left after ``events`` events:
    writing raises, as a socket does (BrokenPipeError)."""

    def __init__(self, events: int):
        self.left, self.started, self.sent = events, False, 0

    def start(self, status, headers):
        self.started = True

    def write(self, data: bytes):
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        self.sent += 1


class SwallowingWriter(HangingUpWriter):
    """A writer that swallows the socket's error and reports ``broken`` instead."""

    broken = False

    def write(self, data: bytes):
        try:
            super().write(data)
        except OSError:
            self.broken = True


@pytest.mark.parametrize("writer_type", [HangingUpWriter, SwallowingWriter])
@pytest.mark.parametrize("converse", [False, True], ids=["invoke", "converse"])
def test_a_client_that_hangs_up_mid_stream_is_billed_what_bedrock_generated(
    stack, writer_type, converse
):
    writer = writer_type(events=2)
    body = converse_body(200) if converse else family_body(HAIKU, 200)
    stack.proxy.handle(stream_event(HAIKU, body, stack.token, converse), stream=writer)
    [line] = stack.logs
    record = stack.fake.usage_by_request_id[line["bedrock_request_id"]]
    assert record["metrics_reported"] is True  # the proxy read Bedrock's stream to its end
    assert writer.sent == 2 < record["output_tokens"]
    assert line["status"] == 200 and line["error_code"] is None
    assert (line["input_tokens"], line["output_tokens"]) == (
        record["input_tokens"],
        record["output_tokens"],
    )
    assert line["usage_estimated"] is False
    day = stack.day(HAIKU)
    assert day["requests"] == 1 and day["output_tokens"] == record["output_tokens"]
    assert "errors" not in day
