"""The two local servers every test and the demo stand on (the proxy's and the fake
Bedrock's), at the HTTP level: as strict as the proxy (JSON errors, bounded reads, chunked
bodies read), and the proxy's events built as API Gateway builds them."""

from __future__ import annotations

import base64
import http.client
import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.fakebedrock import models as fake_models
from bedrock_billing.sandbox.proxy_server import ProxyServer

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
ANTHROPIC_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "Hello"}],
}


class EchoProxy:
    """Stands in for ``Proxy``: keeps each event and answers with it, so a test sees
    exactly what the local server handed the handler."""

    def __init__(self):
        self.events: list[dict] = []

    def handle(self, event, context=None, **_):
        self.events.append(event)
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "X-Echo": "1"},
            "body": json.dumps({"path": event["path"], "body": event["body"]}),
            "isBase64Encoded": False,
        }


@pytest.fixture(scope="module")
def echo():
    proxy = EchoProxy()
    with ProxyServer(proxy) as server:
        yield server, proxy


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock(seed=3) as server:
        yield server


@pytest.fixture(params=["proxy_server", "fake_bedrock"])
def server_port(request, echo, fake) -> int:
    return echo[0].port if request.param == "proxy_server" else fake.port


def raw_exchange(port: int, request: bytes, timeout: float = 5) -> tuple[int, dict, bytes]:
    """Send bytes as they are; (status, lower-cased headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()


def assert_json_error(status: int, headers: dict, body: bytes, expected: int) -> dict:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    parsed = json.loads(body)
    assert isinstance(parsed["message"], str) and parsed["message"]
    assert headers.get("x-amzn-errortype")
    assert b"Traceback" not in body and b"<html" not in body.lower()
    return parsed


# ---- issue 13, item 9: strict as the proxy


@pytest.mark.parametrize("method", ["BREW", "PROPFIND", "TRACE"])
def test_unknown_method_is_a_json_405_not_an_html_page(server_port, method):
    request = f"{method} /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".encode()
    status, headers, body = raw_exchange(server_port, request)
    assert_json_error(status, headers, body, 405)


def test_negative_content_length_is_a_json_400_without_hanging(server_port):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n{{}}"
    ).encode()
    status, headers, body = raw_exchange(server_port, request, timeout=5)
    assert_json_error(status, headers, body, 400)


@pytest.mark.parametrize("value", ["abc", "1e3", "+5", "0x10", "5, 6", "٣"])
def test_non_numeric_content_length_is_a_json_400_without_traceback(server_port, value, capfd):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\nContent-Length: {value}\r\n\r\n"
    ).encode()
    status, headers, body = raw_exchange(server_port, request)
    assert_json_error(status, headers, body, 400)
    assert "Traceback" not in capfd.readouterr().err


def test_body_shorter_than_its_length_is_a_400(server_port):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{{}}"
    ).encode()
    with socket.create_connection(("127.0.0.1", server_port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the body will never be whole
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        assert_json_error(response.status, headers, response.read(), 400)


def test_both_length_and_chunked_is_refused(server_port):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    status, headers, body = raw_exchange(server_port, request)
    assert_json_error(status, headers, body, 400)


def chunked(data: bytes, size: int = 7) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        out += b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def test_chunked_body_reaches_the_proxy_whole(echo):
    server, proxy = echo
    body = json.dumps(ANTHROPIC_BODY).encode()
    request = (
        b"POST /prod/bedrock HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(body)
    )
    status, _, answer = raw_exchange(server.port, request)
    assert status == 200
    assert json.loads(json.loads(answer)["body"]) == ANTHROPIC_BODY


def test_chunked_body_reaches_the_fake_and_is_answered(fake):
    body = json.dumps(ANTHROPIC_BODY).encode()
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked(body)
    status, headers, answer = raw_exchange(fake.port, request)
    assert status == 200, answer
    assert json.loads(answer)["usage"]["input_tokens"] == int(
        headers["x-amzn-bedrock-input-token-count"]
    )


def test_malformed_chunk_size_is_a_400(server_port):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ).encode()
    status, headers, body = raw_exchange(server_port, request)
    assert_json_error(status, headers, body, 400)


def test_chunked_body_over_the_bound_is_a_413_before_it_is_read(fake):
    request = (
        f"POST /model/{HAIKU}/invoke HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + b"%x\r\n" % (64 * 1024 * 1024)  # announced, never sent
    status, headers, body = raw_exchange(fake.port, request)
    assert_json_error(status, headers, body, 413)


def test_garbage_request_line_is_a_json_400(server_port):
    status, headers, body = raw_exchange(server_port, b"\x16\x03\x01 nonsense\r\n\r\n")
    assert_json_error(status, headers, body, 400)


# The bodies that broke the fake's handler on main (the connection dropped, a traceback).
CRASHERS = [
    ("amazon.titan-text-express-v1", {"inputText": "hi", "textGenerationConfig": [1]}),
    ("amazon.nova-lite-v1:0", {"messages": [], "inferenceConfig": "fast"}),
    (HAIKU, {**ANTHROPIC_BODY, "system": 5}),
    (HAIKU, {**ANTHROPIC_BODY, "messages": [{"role": "user", "content": 7}]}),
    ("amazon.nova-lite-v1:0", {"system": 3, "messages": [{"role": "user", "content": []}]}),
]


@pytest.mark.parametrize(("model", "body"), CRASHERS)
def test_fake_answers_malformed_bodies_with_validation_errors(fake, model, body, capfd):
    data = json.dumps(body).encode()
    request = (
        f"POST /model/{model}/invoke HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    status, headers, answer = raw_exchange(fake.port, request)
    assert_json_error(status, headers, answer, 400)
    assert headers["x-amzn-errortype"].startswith("ValidationException")
    assert "Traceback" not in capfd.readouterr().err


def test_fake_answers_deeply_nested_json_with_a_400(fake):
    data = b"[" * 100_000 + b"]" * 100_000
    request = (
        f"POST /model/{HAIKU}/converse HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    status, headers, answer = raw_exchange(fake.port, request)
    assert_json_error(status, headers, answer, 400)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = [
    "anthropic_version", "max_tokens", "messages", "system", "content", "role", "inputText",
    "textGenerationConfig", "maxTokenCount", "prompt", "max_gen_len", "inferenceConfig",
    "maxTokens", "cachePoint", "cache_control", "text",
]  # fmt: skip
bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)
FAMILIES = [
    fake_models.ANTHROPIC,
    fake_models.TITAN,
    fake_models.LLAMA,
    fake_models.MISTRAL,
    fake_models.NOVA,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(FAMILIES), body=bodies, converse=st.booleans())
def test_fake_request_parsing_raises_only_bad_request(family, body, converse):
    try:
        if converse:
            fake_models.parse_converse(body)
        else:
            fake_models.parse_invoke(family, body)
    except fake_models.BadRequest:
        pass


# ---- events as API Gateway builds them


def test_event_carries_the_query_string_both_ways_and_the_client_address(echo):
    server, proxy = echo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/prod/inference-profiles?type=SYSTEM_DEFINED&a=1&a=2&empty=&sp=x%20y")
    assert conn.getresponse().read()
    event = proxy.events[-1]
    assert event["queryStringParameters"] == {
        "type": "SYSTEM_DEFINED",
        "a": "2",
        "empty": "",
        "sp": "x y",
    }
    assert event["multiValueQueryStringParameters"] == {
        "type": ["SYSTEM_DEFINED"],
        "a": ["1", "2"],
        "empty": [""],
        "sp": ["x y"],
    }
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["path"] == "/prod/inference-profiles"


def test_event_without_a_query_has_none_for_both_maps(echo):
    server, proxy = echo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/prod/bedrock", body=b"{}")
    conn.getresponse().read()
    event = proxy.events[-1]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_event_path_stays_percent_encoded_as_the_client_sent_it(echo):
    server, proxy = echo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    sent = "/prod/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
    conn.request("POST", sent, body=b"{}")
    conn.getresponse().read()
    assert proxy.events[-1]["path"] == sent
    # A leading "//" is not a host name (http.server folds it to one slash).
    conn.request("POST", "//double/slash?x=1", body=b"{}")
    conn.getresponse().read()
    assert proxy.events[-1]["path"] == "/double/slash"


def test_head_is_served_without_a_body(echo):
    server, proxy = echo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("X-Echo") == "1"
    assert response.read() == b""
    assert proxy.events[-1]["httpMethod"] == "HEAD"
    conn.request("GET", "/after-head")  # the connection is still usable: no stray body bytes
    assert json.loads(conn.getresponse().read())["path"] == "/after-head"


def test_binary_body_reaches_the_event_as_base64(echo):
    server, proxy = echo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/prod/bedrock", body=b"\xff\xfe\x00")
    conn.getresponse().read()
    event = proxy.events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00"


class SteppedStreamProxy:
    """Streams two events; the second waits until the test has read the first, so the test
    passes only if each write reaches the client as it is made."""

    def __init__(self):
        import threading

        self.first_seen = threading.Event()

    def handle(self, event, context=None, stream=None):
        stream.start(200, {"Content-Type": "application/vnd.amazon.eventstream"})
        stream.write(b"first-event")
        assert self.first_seen.wait(10), "the client never saw the first event"
        stream.write(b"second-event")
        return {"statusCode": 500, "headers": {}, "body": "ignored once streamed"}


def test_streamed_events_reach_the_client_as_they_are_written():
    proxy = SteppedStreamProxy()
    with ProxyServer(proxy) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/prod/model/m/invoke-with-response-stream", body=b"{}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read1() == b"first-event"  # before the second was written
        proxy.first_seen.set()
        assert response.read() == b"second-event"
        # The connection stays usable after the stream's last chunk.
        proxy.first_seen.set()
        conn.request("POST", "/prod/model/m/invoke-with-response-stream", body=b"{}")
        assert conn.getresponse().read() == b"first-eventsecond-event"
