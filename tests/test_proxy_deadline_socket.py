"""The deadline holds on a real socket: botocore's read timeout is per socket read, so a
stream that stalls between events is bounded by the proxy itself (each further read waits
no longer than the deadline allows). Against the fake Bedrock over loopback, whose
``[[fake:slow_stream]]`` answer pauses between events far longer than the request's time."""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote

import boto3
from botocore.config import Config

from bedrock_billing.core import eventstream
from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.fakebedrock.faults import SLOW_STREAM
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from tests.proxy_support import HAIKU, create_tables, event, put_customer, put_token
from tests.test_proxy_deadlines import Collect, Context

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_a_stalled_stream_is_cut_at_the_deadline_not_at_botocores_read_timeout(
    moto_server, aws_credentials
):
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("dl" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    token = put_token(ddb, tables, put_customer(ddb, tables))
    with FakeBedrock(seed=3) as fake:
        fake.slow_stream_interval = 4.0  # a stall between events, longer than the request
        bedrock = boto3.client(
            "bedrock-runtime", endpoint_url=fake.url, region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=60), **CREDS,
        )  # fmt: skip
        logs: list[dict] = []
        proxy = Proxy(
            ProxyConfig(tables=tables, prices=PriceTable.from_env({})),
            dynamodb=ddb, bedrock_runtime=bedrock, log_sink=logs.append,
            admission_sink=[].append,
        )  # fmt: skip
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 3,  # three paced events at most: on main it ends after ~12 s
            "messages": [{"role": "user", "content": f"{SLOW_STREAM} go"}],
        }
        path = f"/model/{quote(HAIKU, safe='')}/invoke-with-response-stream"
        writer = Collect()
        started = time.perf_counter()
        # 1.5 s left: the margin is a third of it, so the deadline is 1 s away.
        proxy.handle(event(body, token, path=path), Context(1500), stream=writer)
        elapsed = time.perf_counter() - started

    assert elapsed < 3.0  # cut near its 1 s deadline, not after the 4 s stall (or 60 s)
    messages, _ = eventstream.decode_messages(writer.data)
    assert messages[-1].headers[":exception-type"] == "modelTimeoutException"
    (line,) = logs
    assert line["error_code"] == "deadline_exceeded" and line["delivered"] is False
    assert line["input_tokens"] > 0 and line["usage_estimated"] is True
