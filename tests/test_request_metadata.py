"""The proxy's tag on every Bedrock call (customer, its own request id, the installation)
as request metadata, set over any client key of the same name; and Bedrock's request id
kept in the log line of a failed call."""

from __future__ import annotations

import json

import pytest

from bedrock_billing.core.invocationlog import CUSTOMER_KEY, INSTALLATION_KEY, REQUEST_KEY
from bedrock_billing.proxy.metadata import MetadataError, merge, merge_header, proxy_tags
from tests import proxy_support
from tests.proxy_support import HAIKU, event, put_customer, put_token, usage_items

aws_env = proxy_support.aws_env
world = proxy_support.world

CLAUDE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}
CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
TAGS = proxy_tags("c-1", "r-1", "bb-test-usage")


def test_the_proxy_keys_overwrite_the_clients_and_the_others_pass():
    merged = merge({CUSTOMER_KEY: "someone-else", "team": "blue"}, TAGS)
    assert merged == {"team": "blue", **TAGS}
    header = json.loads(merge_header('{"bedrock_billing_request_id": "x", "env": "ci"}', TAGS))
    assert header == {"env": "ci", **TAGS}
    assert json.loads(merge_header(None, TAGS)) == TAGS


@pytest.mark.parametrize(
    "value",
    ['not json', '["a"]', '{"a": 1}', json.dumps({f"k{i}": "v" for i in range(14)}),
     json.dumps({"k": "v" * 8500})],  # fmt: skip
)
def test_client_metadata_the_proxy_cannot_carry_is_refused(value):
    with pytest.raises(MetadataError):
        merge_header(value, TAGS)


def test_values_outside_bedrocks_pattern_are_dropped_not_sent():
    assert proxy_tags("c<1>", "r;1", "t")[CUSTOMER_KEY] == "c1"


def customer(world):
    cid = put_customer(world.ddb, world.tables)
    return cid, put_token(world.ddb, world.tables, cid)


def test_invoke_carries_the_tag_in_the_header_over_a_spoofed_customer(world):
    cid, token = customer(world)
    spoof = json.dumps({CUSTOMER_KEY: "another-customer", "team": "blue"})
    headers = {"X-Amzn-Bedrock-Request-Metadata": spoof}
    path = f"/model/{HAIKU}/invoke"
    response = world.proxy.handle(event(CLAUDE, token, path=path, headers=headers))
    assert response["statusCode"] == 200, response
    op, kwargs = world.bedrock.calls[-1]
    sent = json.loads(kwargs["requestMetadata"])
    line = world.logs[-1]
    assert sent == {
        "team": "blue",
        CUSTOMER_KEY: cid,
        REQUEST_KEY: line["request_id"],
        INSTALLATION_KEY: world.tables.usage,
    }


@pytest.mark.parametrize("path", [f"/model/{HAIKU}/converse", f"/model/{HAIKU}/converse-stream"])
def test_converse_carries_the_tag_in_the_body(world, path):
    cid, token = customer(world)
    body = {**CONVERSE, "requestMetadata": {CUSTOMER_KEY: "x", "env": "ci"}}
    assert world.proxy.handle(event(body, token, path=path))["statusCode"] == 200
    _, kwargs = world.bedrock.calls[-1]
    assert kwargs["requestMetadata"][CUSTOMER_KEY] == cid
    assert kwargs["requestMetadata"]["env"] == "ci"


def test_every_wire_api_is_tagged(world):
    cid, token = customer(world)
    anthropic = {"model": HAIKU, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    assert world.proxy.handle(event(anthropic, token, path="/v1/messages"))["statusCode"] == 200
    _, kwargs = world.bedrock.calls[-1]
    tags = kwargs["requestMetadata"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags[CUSTOMER_KEY] == cid


def test_count_tokens_takes_no_tag(world):
    _, token = customer(world)
    path = f"/model/{HAIKU}/count-tokens"
    world.proxy.handle(event({"input": {"converse": CONVERSE}}, token, path=path))
    op, kwargs = world.bedrock.calls[-1]
    assert op == "count_tokens" and "requestMetadata" not in kwargs


def test_bad_client_metadata_is_refused_before_admission(world):
    cid, token = customer(world)
    headers = {"X-Amzn-Bedrock-Request-Metadata": "{not json"}
    response = world.proxy.handle(
        event(CLAUDE, token, path=f"/model/{HAIKU}/invoke", headers=headers)
    )
    assert response["statusCode"] == 400
    assert world.bedrock.calls == []
    assert not [k for k in usage_items(world.ddb, world.tables, cid) if not k.startswith("TOK")]


def test_a_failed_call_keeps_bedrocks_request_id(tls_sandbox, sandbox_customer):
    """A throttled call and a stream broken mid-way: the line names Bedrock's request id."""
    import urllib.error
    import urllib.request

    from tests.sandbox_support import log_lines

    made = sandbox_customer()
    fake = tls_sandbox.fake

    def send(path, body):
        request = urllib.request.Request(
            f"{tls_sandbox.proxy_server.url}/{tls_sandbox.stage}{path}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {made['token']}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except urllib.error.HTTPError as err:
            err.read()

    throttled = {"messages": [{"role": "user", "content": [{"text": "[[fake:throttling]]"}]}]}
    send(f"/model/{HAIKU}/converse", throttled)
    broken = {"messages": [{"role": "user", "content": [{"text": "[[fake:stream_exception]]"}]}]}
    send(f"/model/{HAIKU}/converse-stream", broken)
    lines = [x for x in log_lines(tls_sandbox, made["customer_id"])
             if x["event_type"] != "proxy_admitted"]  # fmt: skip
    assert [line["event_type"] for line in lines] == ["bedrock_error", "bedrock_error"]
    records = [fake.usage_by_request_id[line["bedrock_request_id"]] for line in lines]
    assert [r["error"] for r in records] == ["ThrottlingException", "modelStreamErrorException"]
    assert records[1]["request_metadata"][REQUEST_KEY] == lines[1]["request_id"]
