"""The proxy's deployed entry point (proxy/streaming.py) against a stand-in Runtime API.

The real loop takes invocations from a loopback Runtime API and posts each answer in
Lambda's streaming response mode. Bedrock is a paced stand-in that moves the proxy's clock
a second per event and makes the next event only once the previous one has reached the
Runtime API: a buffered answer could not get past the first wait, so a passing test shows
the chunks leaving one by one, over a generation longer than API Gateway's 29 seconds.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta

from bedrock_billing.core import eventstream
from bedrock_billing.deploy.config import DeployConfig
from bedrock_billing.proxy import streaming
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from tests import proxy_support
from tests.proxy_support import (
    HAIKU,
    StubBedrock,
    claude_body,
    event,
    put_customer,
    put_token,
    usage_items,
)
from tests.runtime_api_standin import RuntimeStandIn

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world

DELTAS = 40
FIFTEEN_MINUTES_MS = 15 * 60 * 1000


class PacedBedrock(StubBedrock):
    """Streams DELTAS text deltas; each event waits for the one before to reach the
    Runtime API stand-in, and moves the proxy's clock one second."""

    def __init__(self, runtime: RuntimeStandIn, clock, request_id: str):
        super().__init__(input_tokens=25, output_tokens=DELTAS * 2)
        self.runtime, self.clock, self.request_id = runtime, clock, request_id
        self.waits: list[bool] = []

    def _chunks(self):
        i, o, _, _ = self.counts
        start = {"type": "message_start", "message": {"usage": {"input_tokens": i}}}
        text = [
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": f" w{n}"}}
            for n in range(DELTAS)
        ]
        return [
            start,
            *text,
            {"type": "message_delta", "usage": {"output_tokens": o}},
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": i,
                    "outputTokenCount": o,
                    "invocationLatency": DELTAS * 1000,
                    "firstByteLatency": 300,
                },
            },
        ]

    def invoke_model_with_response_stream(self, **kwargs):
        self.calls.append(("invoke_model_with_response_stream", kwargs))
        chunks = self._chunks()

        def events():
            for k, chunk in enumerate(chunks):
                if k:
                    # The prelude and events 0..k-1 must have left before event k is made.
                    self.waits.append(self.runtime.wait_for_chunks(self.request_id, k + 1, 5))
                    self.clock.advance(timedelta(seconds=1))
                yield {"chunk": {"bytes": json.dumps(chunk).encode()}}

        return {"body": events(), "contentType": "application/json",
                "ResponseMetadata": self._meta()}


def deployed_proxy(w, bedrock) -> Proxy:
    """A Proxy configured from the environment the template gives the function."""
    env = DeployConfig(stage="test", models=(HAIKU,)).environment()
    config = ProxyConfig.from_env(env)
    assert config.tables == w.tables
    return Proxy(
        config,
        dynamodb=w.ddb,
        bedrock_runtime=bedrock,
        clock=w.clock,
        log_sink=w.logs.append,
        admission_sink=[].append,  # the outcome lines only (one per request)
        metric_sink=w.metrics.append,
        sleep=lambda s: None,
    )


def serve(runtime: RuntimeStandIn, proxy, request_id: str, evt: dict, deadline_ms: int):
    runtime.queue(request_id, evt, deadline_ms)
    worker = threading.Thread(
        target=streaming.run, args=(proxy, streaming.RuntimeAPI(runtime.address)),
        kwargs={"invocations": 1}, daemon=True,
    )
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    return runtime.posted[request_id]


def split_prelude(posted) -> tuple[dict, bytes]:
    head, delimiter, body = posted.body.partition(streaming.DELIMITER)
    assert delimiter == streaming.DELIMITER
    return json.loads(head), body


def customer(w, **limits):
    cid = put_customer(w.ddb, w.tables, **limits)
    return cid, put_token(w.ddb, w.tables, cid)


def stream_event(token: str) -> dict:
    body = claude_body()
    body.pop("modelId")
    evt = event(body, token, path=f"/prod/model/{HAIKU}/invoke-with-response-stream")
    evt["headers"]["Accept"] = eventstream.CONTENT_TYPE
    return evt


def test_a_generation_past_29_seconds_leaves_chunk_by_chunk_and_is_metered_exactly(world):
    cid, token = customer(world, daily_request_limit=10)
    started = world.clock()
    deadline_ms = int(started.timestamp() * 1000) + FIFTEEN_MINUTES_MS
    with RuntimeStandIn() as runtime:
        bedrock = PacedBedrock(runtime, world.clock, "inv-1")
        posted = serve(runtime, deployed_proxy(world, bedrock), "inv-1",
                       stream_event(token), deadline_ms)

    # Each event reached the Runtime API before Bedrock made the next one.
    assert len(bedrock.waits) == DELTAS + 2 and all(bedrock.waits)
    assert world.clock() - started > timedelta(seconds=29)
    # Lambda's streaming response mode, with the error trailers declared and none sent.
    assert posted.complete
    assert posted.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert posted.headers["transfer-encoding"] == "chunked"
    assert posted.headers["content-type"] == streaming.PRELUDE_CONTENT_TYPE
    assert "lambda-runtime-function-error-type" in posted.headers["trailer"].lower()
    assert posted.trailers == {}
    # The prelude is the first chunk; then one chunk per Bedrock event, in order.
    prelude, body = split_prelude(posted)
    assert posted.chunks[0].endswith(streaming.DELIMITER)
    assert prelude["statusCode"] == 200
    assert prelude["headers"]["Content-Type"] == eventstream.CONTENT_TYPE
    messages, rest = eventstream.decode_messages(body)
    assert rest == b"" and len(messages) == DELTAS + 3 == len(posted.chunks) - 1
    texts = [eventstream.chunk_json(m).get("delta", {}).get("text") for m in messages]
    assert texts[1 : DELTAS + 1] == [f" w{n}" for n in range(DELTAS)]
    # Metered from Bedrock's final metrics, exactly, once.
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert (day["requests"], day["input_tokens"], day["output_tokens"]) == (1, 25, DELTAS * 2)
    [line] = world.logs
    assert line["status"] == 200 and line["streamed"] is True
    assert (line["input_tokens"], line["output_tokens"]) == (25, DELTAS * 2)
    assert not line.get("usage_estimated")


def test_an_answer_in_one_piece_goes_out_the_same_way(world):
    cid, token = customer(world)
    world.bedrock.counts = (12, 34, 0, 0)
    body = claude_body()
    body.pop("modelId")
    evt = event(body, token, path=f"/prod/model/{HAIKU}/invoke")
    with RuntimeStandIn() as runtime:
        posted = serve(runtime, deployed_proxy(world, world.bedrock), "inv-2", evt, 2**42)
    prelude, answer = split_prelude(posted)
    assert prelude["statusCode"] == 200
    assert prelude["headers"]["X-Amzn-Bedrock-Output-Token-Count"] == "34"
    assert json.loads(answer)["content"][0]["text"] == "Paris."
    assert posted.chunks[0].endswith(streaming.DELIMITER)  # the prelude, then the body
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert day["output_tokens"] == 34


def test_a_refusal_sets_the_status_in_the_prelude(world):
    _, token = customer(world)
    body = claude_body()
    body.pop("modelId")
    evt = event(body, token + "x", path=f"/prod/model/{HAIKU}/invoke-with-response-stream")
    with RuntimeStandIn() as runtime:
        posted = serve(runtime, deployed_proxy(world, world.bedrock), "inv-3", evt, 2**42)
    prelude, answer = split_prelude(posted)
    assert prelude["statusCode"] == 403
    assert prelude["headers"]["x-amzn-ErrorType"] == "AccessDeniedException"
    assert "message" in json.loads(answer)
    assert world.bedrock.calls == []


def test_a_bedrock_error_mid_stream_goes_in_band_and_the_request_is_recorded(world):
    cid, token = customer(world)
    world.bedrock.stream_error_after = 2
    with RuntimeStandIn() as runtime:
        posted = serve(runtime, deployed_proxy(world, world.bedrock), "inv-4",
                       stream_event(token), 2**42)
    prelude, body = split_prelude(posted)
    assert prelude["statusCode"] == 200  # fixed when the first event went out
    messages, _ = eventstream.decode_messages(body)
    assert messages[-1].headers[":message-type"] == "exception"
    assert posted.trailers == {}  # the proxy's own failure is in-band, not a Lambda error
    [line] = world.logs
    assert line["status"] == 502 and line["error_code"] == "model_stream_error"
    assert usage_items(world.ddb, world.tables, cid)["METER#2025-03"]["d15"] == 0  # refunded


class _ContextProbe:
    """A stand-in proxy that records what the entry point gives it."""

    def __init__(self, clock):
        self.clock, self.seen = clock, []

    def handle(self, evt, context=None, stream=None):
        self.seen.append((evt, context.aws_request_id, context.get_remaining_time_in_millis()))
        self.clock.advance(timedelta(seconds=3))
        self.seen.append(context.get_remaining_time_in_millis())
        return {"statusCode": 204, "headers": {"X-Request-Id": "r"}, "body": ""}


def test_the_request_deadline_comes_from_the_invocation_deadline_header(world):
    probe = _ContextProbe(world.clock)
    deadline_ms = int(world.clock().timestamp() * 1000) + 120_000
    with RuntimeStandIn() as runtime:
        posted = serve(runtime, probe, "inv-5", {"path": "/"}, deadline_ms)
    (evt, request_id, remaining), after = probe.seen
    assert (evt, request_id, remaining, after) == ({"path": "/"}, "inv-5", 120_000, 117_000)
    assert split_prelude(posted)[0] == {"statusCode": 204, "headers": {"X-Request-Id": "r"}}


def test_a_failure_of_the_loop_after_the_prelude_is_reported_in_the_trailers(world):
    class Breaks:
        clock = world.clock

        def handle(self, evt, context=None, stream=None):
            stream.start(200, {"Content-Type": "text/event-stream"})
            stream.write(b"data: {}\n\n")
            raise RuntimeError("boom")

    with RuntimeStandIn() as runtime:
        posted = serve(runtime, Breaks(), "inv-6", {}, 2**42)
    assert posted.trailers["lambda-runtime-function-error-type"] == "Runtime.Unhandled"
    detail = json.loads(base64.b64decode(posted.trailers["lambda-runtime-function-error-body"]))
    assert detail == {"errorType": "Runtime.Unhandled", "errorMessage": "RuntimeError"}


def test_an_event_that_is_not_json_is_reported_to_the_error_endpoint(world):
    with RuntimeStandIn() as runtime:
        runtime.invocations.put(("inv-7", 2**42, b"{not json"))
        streaming.serve_one(_ContextProbe(world.clock), streaming.RuntimeAPI(runtime.address))
    [(path, body)] = runtime.errors
    assert path.endswith("/invocation/inv-7/error") and body["errorType"] == "Runtime.InvalidEvent"


def test_the_zips_wrapper_starts_the_loop_that_serves_lambda(tmp_path):
    """The deployed path from the zip itself: the wrapper Lambda's runtime would run, with
    the environment the template gives it, serves a request through the Runtime API."""
    import io
    import os
    import subprocess
    import sys
    import zipfile

    from bedrock_billing.deploy.package import STREAM_BOOTSTRAP, build_zip

    task_root = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(build_zip().data)).extractall(task_root)
    wrapper = task_root / STREAM_BOOTSTRAP
    wrapper.chmod(0o755)  # extractall drops the mode the zip records (tested elsewhere)
    env = {
        **DeployConfig(stage="test", models=(HAIKU,)).environment(),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with RuntimeStandIn() as runtime:
        env["AWS_LAMBDA_RUNTIME_API"] = runtime.address
        runtime.queue("inv-8", {"httpMethod": "HEAD", "path": "/", "headers": {},
                                "requestContext": {"requestId": "r-8"}}, 2**42)
        proc = subprocess.Popen([str(wrapper)], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with runtime.changed:
                done = runtime.changed.wait_for(
                    lambda: "inv-8" in runtime.posted and runtime.posted["inv-8"].complete, 30
                )
        finally:
            proc.kill()
            _, stderr = proc.communicate()
        assert done, stderr.decode()[-2000:]
        posted = runtime.posted["inv-8"]
    assert posted.headers["lambda-runtime-function-response-mode"] == "streaming"
    prelude, body = split_prelude(posted)
    assert prelude["statusCode"] == 200 and body == b""
    assert prelude["headers"]["x-amzn-RequestId"] == "r-8"


def test_after_a_hang_up_the_proxy_reads_bedrock_to_the_end_and_meters_it(world, monkeypatch):
    """Lambda keeps running when the client goes; here the Runtime API connection itself
    drops after the prelude and one event: the writes fail, the metering does not."""
    cid, token = customer(world)
    world.bedrock.counts = (21, 55, 0, 0)
    streams = []
    opened = streaming.RuntimeAPI.response
    monkeypatch.setattr(streaming.RuntimeAPI, "response",
                        lambda api, rid: streams.append(opened(api, rid)) or streams[-1])
    with RuntimeStandIn() as runtime:
        runtime.hang_up_after["inv-9"] = 2
        posted = serve(runtime, deployed_proxy(world, world.bedrock), "inv-9",
                       stream_event(token), 2**42)
    assert len(posted.chunks) == 2 and streams[0].broken  # the later writes went nowhere
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert (day["requests"], day["input_tokens"], day["output_tokens"]) == (1, 21, 55)
    [line] = world.logs
    assert line["status"] == 200 and line["output_tokens"] == 55


def test_the_first_versions_stream_is_server_sent_events_in_a_deployment(world):
    cid, token = customer(world)
    world.bedrock.counts = (21, 8, 0, 0)
    evt = event(claude_body(stream=True), token, path="/prod/bedrock")
    with RuntimeStandIn() as runtime:
        posted = serve(runtime, deployed_proxy(world, world.bedrock), "inv-10", evt, 2**42)
    prelude, body = split_prelude(posted)
    assert prelude["statusCode"] == 200
    assert prelude["headers"]["Content-Type"].startswith("text/event-stream")
    lines = [line for line in body.decode().split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][len("data: "):])["type"] == "message_start"
    assert len(posted.chunks) == len(lines) + 1  # the prelude, then one chunk per event
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    assert (day["input_tokens"], day["output_tokens"]) == (21, 8)
