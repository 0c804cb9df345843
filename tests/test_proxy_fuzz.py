"""Property: whatever event or body reaches the handler, the answer is a well-formed JSON
4xx (or the model's 200), never a 5xx or a traceback. Strategies carry a valid token and
``modelId`` most of the time, so most cases get past authentication."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_billing.fakebedrock import FakeBedrock
from tests import proxy_support
from tests.proxy_support import HAIKU, put_customer, put_token

settings.register_profile(
    "proxy-fuzz",
    max_examples=1200,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world
TOKEN = "bbk_fuzz-token-0123456789abcdefghijklmnopqrstuvwxyz"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
model_ids = st.sampled_from([HAIKU, "us." + HAIKU, "global." + HAIKU]) | st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
    st.just("arn:aws:bedrock:us-east-1::foundation-model/" + HAIKU),
    st.just("arn:nope"),
)
bodies = st.one_of(
    # mostly a JSON object with a modelId and odd model parameters
    st.builds(
        lambda mid, extra, stream: json.dumps({"modelId": mid, **extra, **stream}),
        model_ids,
        st.dictionaries(st.text(max_size=10), json_values, max_size=5),
        st.one_of(st.just({}), st.builds(lambda v: {"stream": v}, json_values)),
    ),
    st.text(max_size=200),  # not JSON
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),  # JSON, maybe not an object
    st.none(),
    st.integers(),  # not even a string
)
auth_headers = st.one_of(
    st.just(f"Bearer {TOKEN}"),
    st.just(f"Bearer {TOKEN}"),
    st.just(f"bearer  {TOKEN} "),
    st.text(max_size=30),
    st.just("Bearer "),
    st.just("Basic abc"),
)
header_maps = (
    st.builds(
        lambda auth, extra: {"Authorization": auth, **extra},
        auth_headers,
        st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    )
    | st.none()
    | st.lists(st.text(max_size=5), max_size=2)
)


@st.composite
def plausible_events(draw):
    """A well-formed request with one thing or another odd about its body."""
    version = draw(st.sampled_from(["1.0", "2.0"]))
    path = draw(st.sampled_from(["/bedrock", "/prod/bedrock", "/bedrock/converse"]))
    extra = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
    mid = draw(st.sampled_from([HAIKU, "us." + HAIKU, "global." + HAIKU]))
    # Frequencies are set by explicit draws: hypothesis' one_of favours its later branches
    # less than a uniform pick would, and a random "stream" stops a request before auth.
    stream = {}
    if draw(st.integers(0, 9)) >= 7:
        stream = {"stream": draw(json_values)}
    elif draw(st.booleans()):
        stream = {"stream": draw(st.booleans())}
    if draw(st.booleans()):
        extra = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
            **extra,
        }
    body = json.dumps({**extra, "modelId": mid, **stream})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if version == "2.0":
        return {
            "version": "2.0",
            "rawPath": path,
            "headers": headers,
            "body": body,
            "isBase64Encoded": False,
            "requestContext": {"http": {"method": "POST"}, "requestId": "r-3"},
        }
    return {
        "httpMethod": "POST",
        "path": path,
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "r-4"},
    }


@st.composite
def events(draw):
    version = draw(st.sampled_from(["1.0", "2.0", "odd"]))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "OPTIONS", "PUT", "", None, 7]))
    path = draw(
        st.sampled_from(
            ["/bedrock"] * 5 + ["/prod/bedrock", "/bedrock/converse", "/", "/x", None, 3]
        )
    )
    headers = draw(header_maps)
    body = draw(bodies)
    b64 = draw(st.sampled_from([False] * 5 + [True, "yes", None]))
    context = draw(
        st.one_of(
            st.just({"requestId": "r-1"}),
            st.none(),
            st.text(max_size=5),
            st.just({"http": {"method": method}}),
        )
    )
    if version == "2.0":
        return {
            "version": "2.0",
            "rawPath": path,
            "headers": headers,
            "body": body,
            "isBase64Encoded": b64,
            "requestContext": {"http": {"method": method}, "requestId": "r-2"},
        }
    event = {
        "httpMethod": method,
        "path": path,
        "headers": headers,
        "body": body,
        "isBase64Encoded": b64,
        "requestContext": context,
    }
    if version == "odd":
        event.update(
            draw(
                st.dictionaries(
                    st.sampled_from(["headers", "body", "path", "multiValueHeaders"]), json_values
                )
            )
        )
    return event


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock(seed=5, output_tokens=5) as fake:
        yield fake


def test_no_event_or_body_gets_a_5xx(world, fake_bedrock):
    # The real botocore client against the fake endpoint, so parameter validation and
    # Bedrock's own validation errors are part of what is thrown at.
    world.proxy._bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    cid = put_customer(world.ddb, world.tables)
    put_token(world.ddb, world.tables, cid, token=TOKEN)
    seen = {"authenticated": 0, "total": 0}

    @settings(settings.get_profile("proxy-fuzz"))
    @given(st.integers(0, 9), plausible_events(), events(), json_values)
    def check(pick, plausible, chaotic, junk):
        event = plausible if pick < 8 else chaotic if pick < 9 else junk
        world.logs.clear()
        response = world.proxy.handle(event)
        status = response["statusCode"]
        assert 200 <= status < 500, (event, response)
        assert isinstance(response["headers"], dict)
        if status >= 400:
            error = json.loads(response["body"])["error"]
            assert error["code"] and error["request_id"] and "Traceback" not in response["body"]
        seen["total"] += 1
        if world.logs and world.logs[0]["customer_id"]:
            seen["authenticated"] += 1

    check()
    assert seen["total"] >= 1000
    assert seen["authenticated"] > seen["total"] // 2, seen  # most cases get past auth


BEDROCK_OPS = [
    "invoke", "invoke-with-response-stream", "converse", "converse-stream", "count-tokens"
]  # fmt: skip
good_models = st.sampled_from(
    [
        HAIKU,
        "anthropic.claude-3-haiku-20240307-v1%3A0",
        "us." + HAIKU,
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2F" + HAIKU,
    ]
)
odd_models = st.sampled_from(
    [TOKEN, "%ZZ", "a%0Ab", HAIKU + "%0A", "bbk_" + "a" * 40]  # a token must never be echoed
) | st.text(max_size=30).filter(lambda t: "/" not in t and "?" not in t)
bedrock_headers = st.dictionaries(
    st.sampled_from(
        [
            "X-Amzn-Bedrock-Trace",
            "X-Amzn-Bedrock-Service-Tier",
            "X-Amzn-Bedrock-GuardrailIdentifier",
            "X-Amzn-Bedrock-Request-Metadata",
            "X-Amzn-Bedrock-Whatever",
            "Accept",
            "Content-Type",
            "X-Api-Key",
        ]
    ),
    st.sampled_from(["ENABLED", "priority", TOKEN, "", "application/json", "x" * 50]),
    max_size=3,
)


@st.composite
def bedrock_events(draw):
    version = draw(st.sampled_from(["1.0", "2.0"]))
    prefix = draw(st.sampled_from(["", "/prod", "/a/b"]))
    op = draw(st.sampled_from(BEDROCK_OPS))
    model = draw(good_models) if draw(st.integers(0, 9)) < 7 else draw(odd_models)
    path = f"{prefix}/model/{model}/{op}"
    method = draw(st.sampled_from(["POST"] * 12 + ["GET", "HEAD"]))
    if op.startswith("invoke") and draw(st.booleans()):
        body = json.dumps(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                **draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
            }
        )
    elif draw(st.integers(0, 9)) < 7:
        body = json.dumps(
            {
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                **draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
            }
        )
    else:
        body = draw(bodies)
    headers = {"Authorization": f"Bearer {TOKEN}", **draw(bedrock_headers)}
    if version == "2.0":
        return {
            "version": "2.0",
            "rawPath": path,
            "headers": headers,
            "body": body,
            "isBase64Encoded": False,
            "requestContext": {"http": {"method": method}, "requestId": "r-5"},
        }
    return {
        "httpMethod": method,
        "path": path,
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "r-6"},
    }


def test_bedrock_routes_never_5xx_and_never_echo_a_token(world, fake_bedrock):
    world.proxy._bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, signature_version="v4"),
    )
    cid = put_customer(world.ddb, world.tables)
    put_token(world.ddb, world.tables, cid, token=TOKEN)
    seen = {"authenticated": 0, "total": 0}

    @settings(settings.get_profile("proxy-fuzz"), max_examples=600)
    @given(bedrock_events())
    def check(event):
        world.logs.clear()
        response = world.proxy.handle(event)
        status = response["statusCode"]
        assert 200 <= status < 500, (event, response)
        text = json.dumps(response)
        assert TOKEN not in text and "Traceback" not in text
        assert TOKEN not in json.dumps(world.logs)
        if status >= 400:
            assert response["headers"]["x-amzn-ErrorType"]
            body = response["body"]
            if response["isBase64Encoded"]:
                import base64

                body = base64.b64decode(body).decode()
            assert json.loads(body)["message"]
        seen["total"] += 1
        if world.logs and world.logs[0]["customer_id"]:
            seen["authenticated"] += 1

    check()
    assert seen["authenticated"] > seen["total"] // 3, seen


# ---- Named keys, test keys and allowlists

source_ips = st.one_of(
    st.sampled_from(["203.0.113.9", "198.51.100.7", "2001:db8::5", "::ffff:203.0.113.9", ""]),
    st.ip_addresses().map(str),
    st.text(max_size=20),
    st.none(),
    st.integers(),
)
spoof_headers = st.dictionaries(
    st.sampled_from(["X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP"]),
    st.sampled_from(["203.0.113.9", "2001:db8::5", "for=203.0.113.9", "", "x"]),
    max_size=3,
)


def test_keys_test_keys_and_allowlists_never_5xx_never_leak_and_never_bypass(world, fake_bedrock):
    """Whatever the source address, forwarding headers, key and body: no 5xx, no token in
    an answer or a log line, a test key never reaches Bedrock, an address outside an
    allowlist is always refused with ip_not_allowed (never served), and a revoked key is
    always refused."""
    from bedrock_billing.core.customers import address_allowed
    from bedrock_billing.services import customers as customer_svc
    from bedrock_billing.services import keys as key_svc
    from bedrock_billing.settings import resolve_settings

    world.proxy._bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, signature_version="v4"),
    )
    proxy = world.make(auth_cache_ttl=0, negative_cache_ttl=0)
    proxy._bedrock = world.proxy._bedrock
    settings_ = resolve_settings(stage="test")
    created = customer_svc.create_customer(settings_, name="Acme", email="ops@acme.example")
    cid = created["customer_id"]
    customer_svc.update_limits(settings_, cid, allowed_cidrs=["203.0.113.0/24", "2001:db8::/32"])
    keys = {
        "default": (created["token"], None),
        "ci": (key_svc.create_key(settings_, cid, name="ci", daily_limit="5")["token"], None),
        "test": (key_svc.create_key(settings_, cid, name="t", test=True)["token"], None),
        "narrow": (
            key_svc.create_key(settings_, cid, name="n", allowed_cidrs="203.0.113.0/28")["token"],
            ("203.0.113.0/28",),
        ),
    }
    revoked = key_svc.create_key(settings_, cid, name="gone")
    key_svc.revoke_key(settings_, cid, revoked["key_id"])
    keys["revoked"] = (revoked["token"], None)
    tokens = [t for t, _ in keys.values()]
    seen = {"served": 0, "outside": 0, "test": 0}

    @settings(settings.get_profile("proxy-fuzz"), max_examples=400)
    @given(
        st.sampled_from(sorted(keys)),
        source_ips,
        spoof_headers,
        st.sampled_from(["1.0", "2.0"]),
        st.sampled_from(
            [
                "/bedrock",
                f"/model/{HAIKU}/invoke",
                f"/model/{HAIKU}/converse",
                f"/model/{HAIKU}/converse-stream",
            ]
        ),  # fmt: skip
    )
    def check(name, ip, spoof, version, path):
        token, key_cidrs = keys[name]
        if "converse" in path:
            body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
        else:
            body = {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            }
        if path == "/bedrock":
            body["modelId"] = HAIKU
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        headers.update(spoof)
        context = (
            {"http": {"method": "POST", "sourceIp": ip}, "requestId": "r-7"}
            if version == "2.0"
            else {"requestId": "r-8", "identity": {"sourceIp": ip}}
        )
        event = {"headers": headers, "body": json.dumps(body), "isBase64Encoded": False,
                 "requestContext": context}  # fmt: skip
        if version == "2.0":
            event.update(version="2.0", rawPath=path)
        else:
            event.update(httpMethod="POST", path=path)
        world.logs.clear()
        before = len(fake_bedrock.calls)
        response = proxy.handle(event)
        status = response["statusCode"]
        assert 200 <= status < 500, (event, response)
        text = json.dumps(response) + json.dumps(world.logs)
        assert not any(t in text for t in tokens)
        address = ip if isinstance(ip, str) else None
        inside = address_allowed(address, ("203.0.113.0/24", "2001:db8::/32")) and (
            address_allowed(address, key_cidrs)
        )
        code = world.logs[0]["error_code"] if world.logs else None
        if name == "revoked":
            assert status in (401, 403) and code == "token_revoked"  # 403 in Bedrock's format
        elif not inside:
            assert status == 403 and code == "ip_not_allowed"
            seen["outside"] += 1
        if name == "test":
            assert len(fake_bedrock.calls) == before
            seen["test"] += status == 200
        if status == 200:
            seen["served"] += 1
            assert inside and name != "revoked"

    check()
    assert seen["served"] and seen["outside"] and seen["test"], seen
