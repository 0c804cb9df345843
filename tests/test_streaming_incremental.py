"""Streams arrive incrementally at the client, through the real proxy in the sandbox shape
(moto's server, the fake Bedrock, the local proxy server over TLS).

The fake paces a ``[[fake:slow_stream]]`` answer: 40 text events or more, about 50 ms
apart. Each test records when every event reaches the client and asserts that the first
arrived well before the last: a proxy that gathered the stream would hand them over
together. Nothing sleeps in the test or the proxy; the pacing is the fake's.
"""

from __future__ import annotations

import json
import time

import requests

from bedrock_billing.fakebedrock.faults import (
    SLOW_STREAM,
    SLOW_STREAM_EVENTS,
    SLOW_STREAM_INTERVAL,
)
from tests.proxy_support import HAIKU
from tests.test_clients_bedrock import certificate, world  # noqa: F401 (fixtures)

PROMPT = f"Tell me a long story. {SLOW_STREAM}"
# The text events span (n - 1) intervals; a gathered stream would arrive in a few ms.
SPREAD = (SLOW_STREAM_EVENTS - 1) * SLOW_STREAM_INTERVAL / 2


def anthropic_body(**extra) -> dict:
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        **extra,
    }


def assert_incremental(arrivals: list[float], text_events: int) -> None:
    assert text_events >= SLOW_STREAM_EVENTS
    assert arrivals[-1] - arrivals[0] >= SPREAD, arrivals
    # Events came in steadily, not in one burst at the end.
    middle = arrivals[len(arrivals) // 2]
    assert middle - arrivals[0] >= SPREAD / 4 and arrivals[-1] - middle >= SPREAD / 4


def fake_output_tokens(world) -> int:  # noqa: F811
    [call] = [c for c in world.fake.calls if c["streamed"]]
    assert call["metrics_reported"]
    return call["output_tokens"]


def test_boto3_invoke_stream_receives_the_first_event_long_before_the_last(world):  # noqa: F811
    response = world.client().invoke_model_with_response_stream(
        modelId=HAIKU, body=json.dumps(anthropic_body())
    )
    arrivals, texts = [], 0
    for event in response["body"]:
        arrivals.append(time.monotonic())
        chunk = json.loads(event["chunk"]["bytes"])
        texts += chunk.get("type") == "content_block_delta"
    assert_incremental(arrivals, texts)
    [line] = [entry for entry in world.logs if entry["event_type"] == "bedrock_invoke"]
    assert line["output_tokens"] == fake_output_tokens(world) >= SLOW_STREAM_EVENTS


def test_boto3_converse_stream_receives_the_first_event_long_before_the_last(world):  # noqa: F811
    response = world.client().converse_stream(
        modelId=HAIKU,
        messages=[{"role": "user", "content": [{"text": PROMPT}]}],
        inferenceConfig={"maxTokens": 200},
    )
    arrivals, texts = [], 0
    for event in response["stream"]:
        arrivals.append(time.monotonic())
        texts += "contentBlockDelta" in event
    assert_incremental(arrivals, texts)
    [line] = [entry for entry in world.logs if entry["event_type"] == "bedrock_invoke"]
    assert line["output_tokens"] == fake_output_tokens(world)


def test_the_first_versions_sse_route_receives_the_first_event_long_before_the_last(world):  # noqa: F811
    body = {"modelId": HAIKU, "stream": True, **anthropic_body()}
    arrivals, texts = [], 0
    with requests.post(
        world.endpoint + "/bedrock",
        json=body,
        headers={"Authorization": f"Bearer {world.token}"},
        verify=str(world.cert.ca_bundle),
        stream=True,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith(b"data: "):
                continue
            arrivals.append(time.monotonic())
            data = line[len(b"data: "):]
            if data != b"[DONE]":
                texts += json.loads(data).get("type") == "content_block_delta"
    assert_incremental(arrivals, texts)
    [line] = [entry for entry in world.logs if entry["event_type"] == "bedrock_invoke"]
    assert line["output_tokens"] == fake_output_tokens(world)


def test_the_fake_paces_a_slow_stream_itself(world):  # noqa: F811
    arrivals = []
    response = world.direct().invoke_model_with_response_stream(
        modelId=HAIKU, body=json.dumps(anthropic_body())
    )
    for _ in response["body"]:
        arrivals.append(time.monotonic())
    assert len(arrivals) >= SLOW_STREAM_EVENTS
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))
    assert gaps[len(gaps) // 2] >= SLOW_STREAM_INTERVAL * 0.8  # the median gap is ~50 ms
    # Without the marker the same request is answered at once, three words per event.
    plain = anthropic_body()
    plain["messages"][0]["content"][0]["text"] = "Tell me a long story."
    started = time.monotonic()
    events = list(world.direct().invoke_model_with_response_stream(
        modelId=HAIKU, body=json.dumps(plain))["body"])
    assert time.monotonic() - started < SPREAD and events
