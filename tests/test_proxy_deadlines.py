"""Deadlines that agree (issue 13, item 1): the proxy asks the Lambda context how much time is
left, stops a generation at its deadline with a margin to record it, and gives the client
its API's timeout error; Bedrock's client timeouts come from the same budget; a generation
the client never received in full is recorded with its tokens and charged as the operator
chose. Time is the proxy's injected timer, moved by the stand-in Bedrock: no sleeps."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from botocore.exceptions import ReadTimeoutError

from bedrock_billing.core import eventstream
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from tests import proxy_support
from tests.proxy_support import HAIKU, claude_body, event, put_customer, put_token, usage_items

world = proxy_support.world
aws_env = proxy_support.aws_env
DAY, METER = f"DAY#2025-03-15#{HAIKU}", "METER#2025-03"


class Ticker:
    """The proxy's monotonic timer, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Context:
    """Lambda's context as the handler reads it: the time left when the request starts."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Collect:
    """A live stream writer (the local server's, or the Runtime API's)."""

    def __init__(self) -> None:
        self.status, self.data = None, b""

    def start(self, status, headers) -> None:
        self.status = status

    def write(self, data: bytes) -> None:
        self.data += data


def paced(stub, ticker: Ticker, seconds_per_chunk: float) -> dict:
    """Make the stand-in's stream take ``seconds_per_chunk`` per chunk on ``ticker``;
    returns what was read of it (and whether the proxy closed it before its end)."""
    seen = {"read": 0, "total": 0, "closed_early": False}
    original = stub.invoke_model_with_response_stream

    def call(**kwargs):
        response = original(**kwargs)
        chunks = list(response["body"])
        seen["total"] = len(chunks)

        def events():
            try:
                for chunk in chunks:
                    ticker.now += seconds_per_chunk
                    seen["read"] += 1
                    yield chunk
            except GeneratorExit:
                seen["closed_early"] = True
                raise

        response["body"] = events()
        return response

    stub.invoke_model_with_response_stream = call
    return seen


def customer(w, **limits):
    cid = put_customer(w.ddb, w.tables, **limits)
    return cid, put_token(w.ddb, w.tables, cid)


def stream_event(token: str, text: str = "Tell me a long story") -> dict:
    body = {k: v for k, v in claude_body(text).items() if k != "modelId"}
    return event(body, token, path=f"/model/{quote(HAIKU, safe='')}/invoke-with-response-stream")


def test_a_lambda_context_with_little_time_left_stops_the_stream_at_the_deadline(world):
    cid, token = customer(world, daily_request_limit=10)
    ticker = Ticker()
    proxy = world.make()
    proxy.timer = ticker
    seen = paced(world.bedrock, ticker, 2.5)
    writer = Collect()
    # 9 s left: the margin is min(5 s, a third of 9 s) = 3 s, so the deadline is at 6 s.
    proxy.handle(stream_event(token), Context(9000), stream=writer)

    # Stopped after the chunk that crossed 6 s (the 3rd, at 7.5 s): Bedrock's stream closed.
    assert seen == {"read": 3, "total": 5, "closed_early": True}
    # The client got its API's timeout error, in-band after the events it received.
    messages, rest = eventstream.decode_messages(writer.data)
    assert writer.status == 200 and rest == b""
    assert [m.headers[":message-type"] for m in messages] == ["event"] * 3 + ["exception"]
    assert messages[-1].headers[":exception-type"] == "modelTimeoutException"
    # Recorded with the tokens known so far, flagged estimated and undelivered.
    (line,) = world.logs
    assert line["event_type"] == "bedrock_invoke" and line["status"] == 504
    assert line["error_code"] == "deadline_exceeded"
    assert line["delivered"] is False and line["usage_estimated"] is True
    assert line["input_tokens"] == 12 and line["output_tokens"] >= 1
    assert line["duration_ms"] == 7500
    day = usage_items(world.ddb, world.tables, cid)[DAY]
    assert day["requests"] == 1 and day["input_tokens"] == 12 and day["estimated"] == 1
    # The admission line came first, with what a reconcile needs if nothing else comes.
    (admitted,) = world.admissions
    assert admitted["event_type"] == "proxy_admitted"
    assert admitted["request_id"] == line["request_id"] and admitted["customer_id"] == cid
    assert admitted["max_tokens"] == 100 and admitted["request_bytes"] > 0


def test_without_a_context_the_integration_timeout_bounds_the_request(world):
    _, token = customer(world)
    ticker = Ticker()
    proxy = world.make(integration_timeout=12.0)  # the local server: no Lambda context
    proxy.timer = ticker
    seen = paced(world.bedrock, ticker, 4.0)
    # The first version's route, no writer: Lambda's one-piece answer.
    response = proxy.handle(event(claude_body(stream=True), token))

    # 12 s less the 4 s margin (a third of it): stopped after the 2nd chunk, at 8 s.
    assert seen["read"] == 2 and seen["closed_early"]
    assert response["statusCode"] == 504
    assert json.loads(response["body"])["error"]["code"] == "deadline_exceeded"
    assert world.logs[0]["delivered"] is False and world.logs[0]["duration_ms"] == 8000


def test_a_request_with_no_time_left_is_refused_before_admission_and_bedrock(world):
    cid, token = customer(world, daily_request_limit=10)
    response = world.proxy.handle(event(claude_body(), token), Context(0))
    assert response["statusCode"] == 504
    assert json.loads(response["body"])["error"]["code"] == "deadline_exceeded"
    assert world.bedrock.calls == [] and world.admissions == []
    assert world.logs[0]["event_type"] == "proxy_refused"
    assert METER not in usage_items(world.ddb, world.tables, cid)


def test_a_read_timeout_is_recorded_as_an_undelivered_generation_not_refunded(
    world, monkeypatch
):
    cid, token = customer(world, daily_request_limit=10)

    def timed_out(**_):
        raise ReadTimeoutError(endpoint_url="https://bedrock")

    monkeypatch.setattr(world.bedrock, "invoke_model", timed_out)
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 504
    (line,) = world.logs
    # Bedrock had the request: its input is billed by AWS, so it is estimated, not zeroed.
    assert line["event_type"] == "bedrock_invoke" and line["delivered"] is False
    assert line["usage_estimated"] is True and line["input_tokens"] > 0
    items = usage_items(world.ddb, world.tables, cid)
    assert items[METER]["d15"] == 1 and items[DAY]["requests"] == 1


def test_an_answer_after_api_gateways_timeout_is_recorded_undelivered(world):
    _, token = customer(world)
    ticker = Ticker()
    proxy = world.make()  # integration timeout 29 s; the Lambda has 60 s
    proxy.timer = ticker
    original = world.bedrock.invoke_model

    def slow(**kwargs):
        ticker.now += 30.0  # one read of 30 s: botocore's read timeout is per read
        return original(**kwargs)

    world.bedrock.invoke_model = slow
    proxy.handle(event(claude_body(), token), Context(60_000))
    (line,) = world.logs
    assert line["delivered"] is False and line["output_tokens"] == 34


@pytest.mark.parametrize("charge", [True, False])
def test_an_undelivered_generation_is_recorded_and_charged_as_the_operator_chose(world, charge):
    cid, token = customer(world, daily_request_limit=10)
    proxy = world.make(charge_undelivered=charge)
    from tests.test_stream_metering import HangingUpWriter

    proxy.handle(stream_event(token), stream=HangingUpWriter(2))
    (line,) = world.logs
    # Read to its end: Bedrock's own count, whatever the setting.
    assert line["delivered"] is False and line["usage_estimated"] is False
    assert (line["input_tokens"], line["output_tokens"]) == (12, 34)
    items = usage_items(world.ddb, world.tables, cid)
    if charge:
        assert line["event_type"] == "bedrock_invoke"
        assert items[DAY]["requests"] == 1 and items[METER]["tokens"] == 46
        assert items[METER]["d15"] == 1
    else:
        assert line["event_type"] == "bedrock_error" and line["error_code"] == "undelivered"
        assert items[DAY]["errors"] == 1 and "requests" not in items[DAY]
        assert items[METER].get("tokens", 0) == 0 and items[METER]["d15"] == 0


def test_a_delivered_answer_says_so(world):
    _, token = customer(world)
    world.proxy.handle(stream_event(token), stream=Collect())
    world.proxy.handle(event(claude_body(), token))
    assert [line["delivered"] for line in world.logs] == [True, True]
    assert len(world.admissions) == 2


def test_bedrocks_client_timeouts_come_from_the_same_budget(aws_env):
    def timeouts(**settings):
        config = ProxyConfig(region="us-east-1", **settings)
        client = Proxy(config, dynamodb=object()).bedrock()
        return client.meta.config.connect_timeout, client.meta.config.read_timeout

    # API Gateway's default 29 s less the 5 s margin: no single read may wait longer.
    assert timeouts() == (5, 24)
    assert timeouts(integration_timeout=900) == (5, 300)  # the read timeout's own bound
    assert timeouts(integration_timeout=6) == (4, 4)  # the margin: a third of 6 s


def test_the_proxy_settings_are_read_from_the_environment():
    config = ProxyConfig.from_env(
        {"BEDROCK_BILLING_DEADLINE_MARGIN": "2", "BEDROCK_BILLING_CHARGE_UNDELIVERED": "false"}
    )
    assert config.deadline_margin == 2.0 and config.charge_undelivered is False
    assert ProxyConfig.from_env({}).charge_undelivered is True
    from bedrock_billing.proxy.config import ConfigError

    with pytest.raises(ConfigError):
        ProxyConfig.from_env({"BEDROCK_BILLING_CHARGE_UNDELIVERED": "maybe"})


@pytest.mark.parametrize("timeout", [30, 900])
def test_a_deployments_timeouts_agree_with_the_proxys_deadline(timeout):
    from bedrock_billing.deploy.template import build_template
    from bedrock_billing.proxy.deadline import Deadline, client_timeouts
    from tests.deploy_fixtures import config

    template = build_template(config(timeout_seconds=timeout, charge_undelivered=False))
    resources = template["Resources"]
    fn = resources["ProxyFunction"]["Properties"]
    integrations = {
        r["Properties"]["Integration"]["TimeoutInMillis"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method"
    }
    # Lambda and API Gateway end together; the proxy's deadline comes before both, by
    # its margin, and no single Bedrock wait outlasts it.
    assert fn["Timeout"] == timeout and integrations == {timeout * 1000}
    proxy_config = ProxyConfig.from_env(fn["Environment"]["Variables"])
    assert proxy_config.integration_timeout == timeout
    assert proxy_config.charge_undelivered is False  # deploy --no-charge-undelivered
    deadline = Deadline.for_request(Context(timeout * 1000), proxy_config, lambda: 0.0, 0.0)
    assert deadline.at == timeout - min(5.0, timeout / 3)
    connect, read = client_timeouts(
        proxy_config.integration_timeout,
        proxy_config.deadline_margin,
        proxy_config.bedrock_read_timeout,
    )
    assert connect <= read <= deadline.at
