"""The fake Bedrock Runtime endpoint, driven through boto3's real bedrock-runtime client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from bedrock_billing.fakebedrock import ERRORS, FakeBedrock, fault_marker

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-text-express-v1"
LLAMA = "meta.llama3-8b-instruct-v1:0"
MISTRAL = "mistral.mistral-7b-instruct-v0:2"
NOVA = "amazon.nova-lite-v1:0"


def make_client(url: str | None = None):
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # One attempt: a test that injects a fault sees it, not a retry's success.
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock(seed=7) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake):
    return make_client(fake.url)


@pytest.fixture(autouse=True)
def _fresh(fake):
    fake.reset()


def anthropic_body(text="Hello, how are you?", max_tokens=200, **extra):
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def family_body(model: str, text: str = "Tell me about billing.", max_tokens: int = 200):
    if model.startswith("anthropic"):
        return anthropic_body(text, max_tokens)
    if model.startswith("amazon.titan"):
        return {"inputText": text, "textGenerationConfig": {"maxTokenCount": max_tokens}}
    if model.startswith("meta"):
        return {"prompt": text, "max_gen_len": max_tokens}
    if model.startswith("mistral"):
        return {"prompt": f"<s>[INST] {text} [/INST]", "max_tokens": max_tokens}
    return {
        "schemaVersion": "messages-v1",
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }


def invoke(client, model, body):
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    return response, json.loads(response["body"].read())


def header_counts(response) -> tuple[int, int]:
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return (
        int(headers["x-amzn-bedrock-input-token-count"]),
        int(headers["x-amzn-bedrock-output-token-count"]),
    )


def body_counts(model: str, body: dict) -> tuple[int, int] | None:
    """The counts each family reports in its own body (Mistral reports none)."""
    if model.startswith("anthropic"):
        return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    if model.startswith("amazon.titan"):
        return body["inputTextTokenCount"], body["results"][0]["tokenCount"]
    if model.startswith("meta"):
        return body["prompt_token_count"], body["generation_token_count"]
    if model.startswith("amazon.nova"):
        return body["usage"]["inputTokens"], body["usage"]["outputTokens"]
    return None


def answer_text(model: str, body: dict) -> str:
    if model.startswith("anthropic"):
        return body["content"][0]["text"]
    if model.startswith("amazon.titan"):
        return body["results"][0]["outputText"]
    if model.startswith("meta"):
        return body["generation"]
    if model.startswith("mistral"):
        return body["outputs"][0]["text"]
    return body["output"]["message"]["content"][0]["text"]


# -- InvokeModel -------------------------------------------------------------------------


@pytest.mark.parametrize("model", [HAIKU, TITAN, LLAMA, MISTRAL, NOVA])
def test_invoke_reports_the_recorded_counts_in_headers_and_body(fake, client, model):
    response, body = invoke(client, model, family_body(model))

    request_id = response["ResponseMetadata"]["RequestId"]
    record = fake.usage_by_request_id[request_id]
    counts = (record["input_tokens"], record["output_tokens"])
    assert header_counts(response) == counts
    assert body_counts(model, body) in (counts, None)
    assert len(answer_text(model, body).split()) == record["output_tokens"]
    assert record["model_id"] == model
    assert record["api"] == "InvokeModel"
    assert record["streamed"] is False
    assert record["metrics_reported"] is True
    assert record["error"] is None
    assert response["contentType"] == "application/json"


def test_anthropic_body_has_the_messages_api_shape(client):
    _, body = invoke(client, HAIKU, anthropic_body())
    assert body["id"].startswith("msg_")
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["content"][0]["type"] == "text"
    assert body["stop_reason"] == "end_turn"
    assert set(body["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation",
    }


@pytest.mark.parametrize(
    "model_id",
    [
        "us.anthropic.claude-3-haiku-20240307-v1:0",
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu." + HAIKU,
    ],
)
def test_inference_profiles_and_arns_resolve_to_the_foundation_model(fake, client, model_id):
    response, _ = invoke(client, model_id, anthropic_body())
    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    assert record["model_id"] == model_id
    assert record["foundation_model"] == HAIKU


STOP_KEYS = {
    HAIKU: lambda b: b["stop_reason"],
    TITAN: lambda b: b["results"][0]["completionReason"],
    LLAMA: lambda b: b["stop_reason"],
    MISTRAL: lambda b: b["outputs"][0]["stop_reason"],
    NOVA: lambda b: b["stopReason"],
}


@pytest.mark.parametrize(
    ("model", "at_limit", "finished"),
    [
        (HAIKU, "max_tokens", "end_turn"),
        (TITAN, "LENGTH", "FINISH"),
        (LLAMA, "length", "stop"),
        (MISTRAL, "length", "stop"),
        (NOVA, "max_tokens", "end_turn"),
    ],
)
def test_output_never_exceeds_max_tokens_and_says_so_when_it_stops_there(
    client, model, at_limit, finished
):
    for max_tokens in (1, 3):
        response, body = invoke(client, model, family_body(model, max_tokens=max_tokens))
        assert header_counts(response)[1] == max_tokens
        assert len(answer_text(model, body).split()) == max_tokens
        assert STOP_KEYS[model](body) == at_limit
    _, body = invoke(client, model, family_body(model, max_tokens=2000))
    assert STOP_KEYS[model](body) == finished


def test_input_tokens_grow_with_the_prompt(client):
    short, _ = invoke(client, HAIKU, anthropic_body("hi"))
    long, _ = invoke(client, HAIKU, anthropic_body("hi " * 400))
    assert header_counts(long)[0] > header_counts(short)[0] + 250


def test_repeated_requests_get_different_counts(client):
    outputs = {header_counts(invoke(client, HAIKU, anthropic_body())[0])[1] for _ in range(6)}
    assert len(outputs) > 1


def test_a_seed_makes_the_counts_reproducible():
    def run(seed):
        with FakeBedrock(seed=seed) as server:
            c = make_client(server.url)
            return [
                header_counts(invoke(c, model, family_body(model))[0])
                for model in (HAIKU, HAIKU, TITAN, LLAMA, NOVA)
            ]

    first = run(11)
    assert run(11) == first
    assert run(12) != first


def test_fixed_counts_when_asked():
    with FakeBedrock(input_tokens=10, output_tokens=20) as server:
        c = make_client(server.url)
        assert header_counts(invoke(c, HAIKU, anthropic_body())[0]) == (10, 20)
        assert header_counts(invoke(c, HAIKU, anthropic_body(max_tokens=5))[0]) == (10, 5)


def test_cache_control_writes_the_prefix_once_then_reads_it(fake, client):
    system = [{"type": "text", "text": "policy " * 300, "cache_control": {"type": "ephemeral"}}]
    first, body1 = invoke(client, HAIKU, anthropic_body("q1", system=system))
    second, body2 = invoke(client, HAIKU, anthropic_body("q2", system=system))

    written = body1["usage"]["cache_creation_input_tokens"]
    assert written > 200 and body1["usage"]["cache_read_input_tokens"] == 0
    assert body2["usage"]["cache_read_input_tokens"] == written
    assert body2["usage"]["cache_creation_input_tokens"] == 0
    # The cached prefix is not counted again as plain input.
    assert body2["usage"]["input_tokens"] < 20
    h1 = first["ResponseMetadata"]["HTTPHeaders"]
    h2 = second["ResponseMetadata"]["HTTPHeaders"]
    assert int(h1["x-amzn-bedrock-cache-write-input-token-count"]) == written
    assert int(h2["x-amzn-bedrock-cache-read-input-token-count"]) == written
    record = fake.usage_by_request_id[second["ResponseMetadata"]["RequestId"]]
    assert record["cache_read_input_tokens"] == written
    assert record["cache_write_input_tokens"] == 0


def test_no_cache_headers_without_cache_control(client):
    response, _ = invoke(client, HAIKU, anthropic_body())
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert "x-amzn-bedrock-cache-read-input-token-count" not in headers


# -- InvokeModelWithResponseStream ---------------------------------------------------------


def stream_chunks(client, model, body):
    response = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    return response, chunks


def streamed_text(model: str, chunks: list[dict]) -> str:
    if model.startswith("anthropic"):
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    if model.startswith("amazon.titan"):
        return "".join(c["outputText"] for c in chunks)
    if model.startswith("meta"):
        return "".join(c["generation"] for c in chunks)
    if model.startswith("mistral"):
        return "".join(c["outputs"][0]["text"] for c in chunks)
    return "".join(
        c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c
    )


@pytest.mark.parametrize("model", [HAIKU, TITAN, LLAMA, MISTRAL, NOVA])
def test_stream_last_chunk_carries_the_recorded_metrics(fake, client, model):
    response, chunks = stream_chunks(client, model, family_body(model))

    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == record["input_tokens"]
    assert metrics["outputTokenCount"] == record["output_tokens"]
    assert metrics["cacheReadInputTokenCount"] == 0
    assert metrics["invocationLatency"] >= metrics["firstByteLatency"] > 0
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])
    assert len(streamed_text(model, chunks).split()) == record["output_tokens"]
    assert len(chunks) > 2
    assert record["streamed"] is True and record["metrics_reported"] is True
    assert record["api"] == "InvokeModelWithResponseStream"


def test_anthropic_stream_has_the_messages_api_events(fake, client):
    response, chunks = stream_chunks(client, HAIKU, anthropic_body())
    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    types = [c["type"] for c in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"}
    assert chunks[0]["message"]["usage"]["input_tokens"] == record["input_tokens"]
    assert chunks[-2]["usage"]["output_tokens"] == record["output_tokens"]


def test_stream_is_decoded_chunk_by_chunk(client):
    # The first event is readable before the stream is drained: the fake sends one HTTP
    # chunk per event, as Bedrock does.
    response = client.invoke_model_with_response_stream(
        modelId=HAIKU, body=json.dumps(anthropic_body())
    )
    events = iter(response["body"])
    first = json.loads(next(events)["chunk"]["bytes"])
    assert first["type"] == "message_start"
    assert json.loads(list(events)[-1]["chunk"]["bytes"])["type"] == "message_stop"


def test_truncated_stream_ends_cleanly_without_metrics(fake, client):
    fake.fail_next("stream_truncated")
    response, chunks = stream_chunks(client, HAIKU, anthropic_body(max_tokens=100))

    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks)
    assert "message_stop" not in [c["type"] for c in chunks]
    assert record["metrics_reported"] is False
    assert record["fault"] == "stream_truncated"
    # What the fake recorded is what it actually sent.
    assert len(streamed_text(HAIKU, chunks).split()) == record["output_tokens"] > 0


def test_stream_exception_midway_raises_event_stream_error(fake, client):
    fake.fail_next("stream_exception", message="boom")
    response = client.invoke_model_with_response_stream(
        modelId=LLAMA, body=json.dumps(family_body(LLAMA))
    )
    received = []
    with pytest.raises(EventStreamError) as err:
        for event in response["body"]:
            received.append(json.loads(event["chunk"]["bytes"]))
    assert err.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert err.value.response["Error"]["Message"] == "boom"
    assert received, "some chunks arrive before the exception"
    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    assert record["error"] == "modelStreamErrorException"
    assert record["metrics_reported"] is False


def test_stream_exception_type_can_be_chosen(fake, client):
    fake.fail_next("stream_exception", exception_type="throttlingException")
    response = client.invoke_model_with_response_stream(
        modelId=HAIKU, body=json.dumps(anthropic_body())
    )
    with pytest.raises(EventStreamError) as err:
        list(response["body"])
    assert err.value.response["Error"]["Code"] == "throttlingException"


def test_stream_faults_wait_for_a_streaming_call(fake, client):
    fake.fail_next("stream_truncated")
    response, _ = invoke(client, HAIKU, anthropic_body())
    assert fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]["fault"] is None
    _, chunks = stream_chunks(client, HAIKU, anthropic_body())
    assert "message_stop" not in [c["type"] for c in chunks]


# -- Converse ------------------------------------------------------------------------------


def converse_messages(text="What is a token?"):
    return [{"role": "user", "content": [{"text": text}]}]


@pytest.mark.parametrize("model", [HAIKU, NOVA, LLAMA, "us.amazon.nova-pro-v1:0"])
def test_converse_usage_matches_the_record(fake, client, model):
    response = client.converse(
        modelId=model, messages=converse_messages(), inferenceConfig={"maxTokens": 100}
    )
    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    usage = response["usage"]
    assert usage["inputTokens"] == record["input_tokens"]
    assert usage["outputTokens"] == record["output_tokens"] <= 100
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert usage["cacheReadInputTokens"] == usage["cacheWriteInputTokens"] == 0
    assert response["stopReason"] in ("end_turn", "max_tokens")
    assert response["metrics"]["latencyMs"] > 0
    text = response["output"]["message"]["content"][0]["text"]
    assert len(text.split()) == record["output_tokens"]
    assert record["api"] == "Converse" and record["streamed"] is False


def test_converse_cache_point_writes_then_reads(client):
    system = [{"text": "rules " * 300}, {"cachePoint": {"type": "default"}}]
    first = client.converse(modelId=NOVA, system=system, messages=converse_messages("a"))
    second = client.converse(modelId=NOVA, system=system, messages=converse_messages("b"))
    written = first["usage"]["cacheWriteInputTokens"]
    assert written > 200
    assert second["usage"]["cacheReadInputTokens"] == written
    assert second["usage"]["cacheWriteInputTokens"] == 0


def test_converse_stream_metadata_matches_the_record(fake, client):
    response = client.converse_stream(
        modelId=HAIKU, messages=converse_messages(), inferenceConfig={"maxTokens": 50}
    )
    events = list(response["stream"])
    record = fake.usage_by_request_id[response["ResponseMetadata"]["RequestId"]]
    assert list(events[0]) == ["messageStart"]
    assert list(events[-1]) == ["metadata"]
    usage = events[-1]["metadata"]["usage"]
    assert (usage["inputTokens"], usage["outputTokens"]) == (
        record["input_tokens"],
        record["output_tokens"],
    )
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert len(text.split()) == record["output_tokens"]
    assert record["api"] == "ConverseStream" and record["streamed"] is True


def test_truncated_converse_stream_has_no_metadata(fake, client):
    fake.fail_next("stream_truncated")
    response = client.converse_stream(modelId=NOVA, messages=converse_messages())
    events = list(response["stream"])
    assert events and all("metadata" not in e for e in events)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_each_injected_error_becomes_its_botocore_code(fake, client, kind):
    code, status, _ = ERRORS[kind]
    fake.fail_next(kind)
    with pytest.raises(ClientError) as err:
        invoke(client, HAIKU, anthropic_body())
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    request_id = err.value.response["ResponseMetadata"]["RequestId"]
    record = fake.usage_by_request_id[request_id]
    assert (record["error"], record["status"], record["output_tokens"]) == (code, status, 0)
    # The modelled exceptions are raised as their own classes.
    assert isinstance(err.value, getattr(client.exceptions, code))


@pytest.mark.parametrize("call", ["converse", "stream", "converse_stream"])
def test_errors_reach_every_operation(fake, client, call):
    fake.fail_next("access_denied")
    with pytest.raises(client.exceptions.AccessDeniedException):
        if call == "converse":
            client.converse(modelId=NOVA, messages=converse_messages())
        elif call == "stream":
            client.invoke_model_with_response_stream(
                modelId=HAIKU, body=json.dumps(anthropic_body())
            )
        else:
            client.converse_stream(modelId=NOVA, messages=converse_messages())


def test_fail_next_times_then_recovers(fake, client):
    fake.fail_next("unavailable", times=2)
    for _ in range(2):
        with pytest.raises(client.exceptions.ServiceUnavailableException):
            invoke(client, HAIKU, anthropic_body())
    invoke(client, HAIKU, anthropic_body())
    assert [c["error"] for c in fake.calls] == [
        "ServiceUnavailableException",
        "ServiceUnavailableException",
        None,
    ]


def test_a_marker_in_the_prompt_fails_every_time(fake, client):
    body = anthropic_body(f"please {fault_marker('throttling')} now")
    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException):
            invoke(client, HAIKU, body)
    with pytest.raises(ValueError):
        fault_marker("nonsense")


def test_unknown_model_is_resource_not_found(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        invoke(client, "acme.unknown-model-v1", anthropic_body())


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (HAIKU, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}),
        (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "messages": []}),
        (TITAN, {"textGenerationConfig": {}}),
        (LLAMA, {"prompt": "hi", "max_gen_len": 0}),
        (HAIKU, ["not", "an", "object"]),
    ],
)
def test_malformed_bodies_are_validation_errors(client, model, body):
    with pytest.raises(client.exceptions.ValidationException):
        invoke(client, model, body)


def test_unknown_fault_kind_is_refused(fake):
    with pytest.raises(ValueError):
        fake.fail_next("explode")


# -- server ------------------------------------------------------------------------------


def test_concurrent_calls_are_each_recorded(fake, client):
    def one(i):
        response, _ = invoke(client, HAIKU, anthropic_body(f"question {i}"))
        return response["ResponseMetadata"]["RequestId"], header_counts(response)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(24)))
    assert len(fake.usage_by_request_id) == 24
    for request_id, counts in results:
        record = fake.usage_by_request_id[request_id]
        assert (record["input_tokens"], record["output_tokens"]) == counts


def test_environment_variable_points_boto3_at_the_fake(fake, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
    response, _ = invoke(make_client(None), HAIKU, anthropic_body())
    assert response["ResponseMetadata"]["RequestId"] in fake.usage_by_request_id


def test_stop_frees_the_port():
    server = FakeBedrock().start()
    port = server.port
    c = make_client(server.url)
    invoke(c, HAIKU, anthropic_body())  # leaves a keep-alive connection open
    server.stop()
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    with FakeBedrock(port) as again:
        assert again.port == port
        invoke(make_client(again.url), HAIKU, anthropic_body())


def test_module_runs_alone_on_a_given_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bedrock_billing.fakebedrock", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip().endswith(f"http://127.0.0.1:{port}")
        response, _ = invoke(make_client(f"http://127.0.0.1:{port}"), HAIKU, anthropic_body())
        assert header_counts(response)[1] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()


def test_boto3_with_a_bedrock_api_key_reaches_the_fake_over_tls(tmp_path, monkeypatch):
    from bedrock_billing.localhttp.tls import make_tls_files

    tls = make_tls_files(tmp_path)
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "an-api-key")
    with FakeBedrock(seed=5, tls=tls) as fake:
        assert fake.url.startswith("https://")
        # No SigV4 credentials at all: botocore sends the key as a Bearer token.
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=fake.url,
            verify=str(tls.ca_bundle),
            config=Config(retries={"total_max_attempts": 1}, proxies={}),
        )
        answer = client.converse(
            modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "Hi"}]}]
        )
        record = fake.usage_by_request_id[answer["ResponseMetadata"]["RequestId"]]
    assert record["auth_scheme"] == "Bearer"
    assert answer["output"]["message"]["content"][0]["text"] == record["output_text"]
    assert answer["usage"]["outputTokens"] == record["output_tokens"]
