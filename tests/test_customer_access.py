"""Per-customer browser origins (CORS) and model parameters, through the services that set
them and the proxy that enforces them (moto in process, the stub Bedrock)."""

from __future__ import annotations

import json

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.origins import parse_origin_list
from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services.audit import list_audit
from bedrock_billing.settings import resolve_settings
from tests import proxy_support
from tests.proxy_support import SONNET, claude_body, event

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world

APP = "https://app.acme.example"


@pytest.fixture
def settings(world):
    return resolve_settings(stage="test")


@pytest.fixture
def acme(settings):
    created = customer_svc.create_customer(settings, name="Acme", email="ops@acme.example")
    return created["customer_id"], created["token"]


def _code(response) -> str | None:
    body = json.loads(response["body"]) if response["body"] else {}
    return (body.get("error") or {}).get("code")


# ---- CORS origins per customer


def test_a_customers_origins_are_checked_on_the_real_request(settings, world, acme):
    cid, token = acme
    result = customer_svc.update_limits(settings, cid, allowed_origins=[APP + "/"])
    assert result["limits"]["allowed_origins"] == [APP]
    proxy = world.make(cors_per_customer=True)
    # The preflight carries no token: it passes for any well-formed origin...
    for origin in (APP, "https://evil.example"):
        pre = proxy.handle(event(None, None, method="OPTIONS", headers={"Origin": origin}))
        assert pre["headers"]["Access-Control-Allow-Origin"] == origin
    bad = proxy.handle(event(None, None, method="OPTIONS", headers={"Origin": "javascript:x"}))
    assert "Access-Control-Allow-Origin" not in bad["headers"]
    # ...and the real request, whose token names the customer, is held to its list.
    ok = proxy.handle(event(claude_body(), token, headers={"Origin": APP}))
    assert ok["statusCode"] == 200 and ok["headers"]["Access-Control-Allow-Origin"] == APP
    assert ok["headers"]["Vary"] == "Origin"
    refused = proxy.handle(event(claude_body(), token, headers={"Origin": "https://evil.example"}))
    assert refused["statusCode"] == 403 and _code(refused) == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused["headers"]
    # No Origin header (a server, curl, an SDK): not a browser's request, served.
    assert proxy.handle(event(claude_body(), token))["statusCode"] == 200
    assert len(world.bedrock.calls) == 2  # the refused one never reached Bedrock
    assert world.logs[-2]["error_code"] == "origin_not_allowed"


def test_a_customer_without_origins_keeps_the_deployments_list(settings, world, acme):
    _, token = acme
    proxy = world.make(cors_origins=(APP,), cors_per_customer=True)
    ok = proxy.handle(event(claude_body(), token, headers={"Origin": APP}))
    assert ok["headers"]["Access-Control-Allow-Origin"] == APP
    other = proxy.handle(event(claude_body(), token, headers={"Origin": "https://other.example"}))
    assert other["statusCode"] == 200  # served as before; the browser is not let read it
    assert "Access-Control-Allow-Origin" not in other["headers"]
    # Without per-customer mode a preflight from an unlisted origin still gets nothing.
    plain = world.make(cors_origins=(APP,))
    pre = plain.handle(event(None, None, method="OPTIONS", headers={"Origin": "https://x.example"}))
    assert "Access-Control-Allow-Origin" not in pre["headers"]


def test_origin_lists_are_validated_and_any_clears(settings, acme):
    cid, _ = acme
    assert parse_origin_list("https://A.example:8443, http://localhost:3000") == [
        "https://a.example:8443",
        "http://localhost:3000",
    ]
    assert parse_origin_list("any") is None
    for bad in ("*", "https://a.example/path", "ftp://a.example", "a.example"):
        with pytest.raises(InvalidInput):
            parse_origin_list(bad)
    customer_svc.update_limits(settings, cid, allowed_origins=[APP])
    cleared = customer_svc.update_limits(settings, cid, allowed_origins=["any"])
    assert cleared["limits"]["allowed_origins"] is None


# ---- model parameters per customer


def test_defaults_are_filled_in_and_the_cap_refuses(settings, world, acme):
    cid, token = acme
    result = customer_svc.update_model_parameters(
        settings, cid, max_tokens="300", max_tokens_cap="1000", temperature="0.2",
        guardrail="abc123:1",
    )  # fmt: skip
    assert result["model_parameters"] == {
        "max_tokens": 300, "max_tokens_cap": 1000, "on_cap": "refuse", "temperature": "0.2",
        "guardrail_id": "abc123", "guardrail_version": "1",
    }  # fmt: skip
    body = claude_body()
    del body["max_tokens"]
    assert world.proxy.handle(event(body, token))["statusCode"] == 200
    name, call = world.bedrock.calls[-1]
    sent = json.loads(call["body"])
    assert (sent["max_tokens"], sent["temperature"]) == (300, 0.2)
    assert (call["guardrailIdentifier"], call["guardrailVersion"]) == ("abc123", "1")
    # A request's own value stays; above the cap it is refused, before admission.
    assert world.proxy.handle(event(claude_body(max_tokens=900), token))["statusCode"] == 200
    assert json.loads(world.bedrock.calls[-1][1]["body"])["max_tokens"] == 900
    refused = world.proxy.handle(event(claude_body(max_tokens=4096), token))
    assert refused["statusCode"] == 400 and _code(refused) == "max_tokens_above_cap"
    assert len(world.bedrock.calls) == 2
    assert world.logs[-1]["event_type"] == "proxy_refused"


def test_clamp_lowers_max_tokens_in_converse_too(settings, world, acme):
    cid, token = acme
    customer_svc.update_model_parameters(settings, cid, max_tokens_cap="500", on_cap="clamp")
    converse = {
        "modelId": SONNET,
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 4000},
    }
    response = world.proxy.handle(event(converse, token, path="/bedrock/converse"))
    assert response["statusCode"] == 200
    name, call = world.bedrock.calls[-1]
    assert name == "converse" and call["inferenceConfig"]["maxTokens"] == 500


def test_model_parameter_changes_are_audited_and_unset_clears(settings, acme):
    cid, _ = acme
    customer_svc.update_model_parameters(settings, cid, temperature="0.5")
    cleared = customer_svc.update_model_parameters(settings, cid, temperature="unset")
    assert cleared["model_parameters"] is None
    actions = [r["action"] for r in list_audit(settings, customer_id=cid)]
    assert actions.count("model_parameters.update") == 2
    with pytest.raises(InvalidInput):
        customer_svc.update_model_parameters(settings, cid)
    with pytest.raises(InvalidInput):
        customer_svc.update_model_parameters(settings, cid, max_tokens="500", max_tokens_cap="10")


def test_a_damaged_parameters_map_refuses_the_customer_never_serves_it_uncapped(world, acme):
    cid, token = acme
    world.ddb.update_item(
        TableName=world.tables.customers,
        Key={"customer_id": {"S": cid}},
        UpdateExpression="SET model_parameters = :m",
        ExpressionAttributeValues={":m": {"M": {"max_tokens_cap": {"S": "1000"}}}},
    )
    response = world.proxy.handle(event(claude_body(), token))
    assert response["statusCode"] == 503 and _code(response) == "customer_record_invalid"


def test_deploy_cors_per_customer_reaches_the_proxys_environment():
    from bedrock_billing.deploy.config import DeployConfig
    from bedrock_billing.proxy.config import ProxyConfig

    env = DeployConfig(models=("m.x-v1",), cors_per_customer=True).environment()
    assert env["BEDROCK_BILLING_CORS_PER_CUSTOMER"] == "true"
    assert ProxyConfig.from_env(env).cors_per_customer is True
    assert "BEDROCK_BILLING_CORS_PER_CUSTOMER" not in DeployConfig(models=("m.x-v1",)).environment()
    assert ProxyConfig.from_env({}).cors_per_customer is False


def test_a_test_keys_requests_are_not_counted_as_usage_in_the_metrics(settings, world, acme):
    from bedrock_billing.services import keys as key_svc

    cid, _ = acme
    test_key = key_svc.create_key(settings, cid, name="sandbox", test=True)
    proxy = world.make(request_metrics=True)
    assert proxy.handle(event(claude_body(), test_key["token"]))["statusCode"] == 200
    [record] = [m for m in world.metrics if "Requests" in m]
    assert (record["Requests"], record["Tokens"], record["InputTokens"]) == (0, 0, 0)
    assert world.bedrock.calls == []
