"""Per-customer application inference profiles: created tagged with the customer id
(Bedrock's control plane faked: moto has no inference-profile API), recorded on the
customer, used by the proxy for that customer's calls, and resolved to the model they copy
for limits, prices and the log."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from bedrock_billing.core.customers import InvalidRecord, read_customer_record
from bedrock_billing.core.errors import AwsError, Conflict, InvalidInput
from bedrock_billing.services.customers import create_customer, show_customer
from bedrock_billing.services.inference_profiles import CUSTOMER_TAG, add_inference_profile
from tests import proxy_support
from tests.proxy_support import HAIKU, claude_body, event, put_customer, put_token

world = proxy_support.world
aws_env = proxy_support.aws_env
ACCOUNT = "123456789012"
ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/abc123def456"


class FakeControlPlane:
    """Bedrock's CreateInferenceProfile, as botocore's model shapes it."""

    def __init__(self, fail: str | None = None):
        self.made: list[dict] = []
        self.fail = fail

    def create_inference_profile(self, **kwargs):
        if self.fail:
            raise ClientError({"Error": {"Code": self.fail, "Message": "no"}},
                              "CreateInferenceProfile")  # fmt: skip
        self.made.append(kwargs)
        return {"inferenceProfileArn": f"{ARN[:-12]}{len(self.made):012d}", "status": "ACTIVE"}


def test_a_profile_is_created_tagged_and_recorded(settings_for):
    settings = settings_for(region="us-east-1")
    cid = create_customer(settings, name="Acme", email="a@acme.example", notify=lambda m: None)[
        "customer_id"
    ]
    plane = FakeControlPlane()
    made = add_inference_profile(settings, cid, HAIKU, bedrock=plane, account=ACCOUNT)
    geo = add_inference_profile(settings, cid, "us." + HAIKU, bedrock=plane, account=ACCOUNT)
    first, second = plane.made
    assert first["modelSource"] == {
        "copyFrom": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"}
    assert second["modelSource"] == {
        "copyFrom": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}"}
    assert {"key": CUSTOMER_TAG, "value": cid} in first["tags"]
    shown = show_customer(settings, cid)
    assert shown["inference_profiles"] == {
        HAIKU: made["inference_profile_arn"], "us." + HAIKU: geo["inference_profile_arn"]}
    with pytest.raises(Conflict):
        add_inference_profile(settings, cid, HAIKU, bedrock=plane, account=ACCOUNT)
    with pytest.raises(InvalidInput):
        add_inference_profile(settings, cid, ARN, bedrock=plane, account=ACCOUNT)


def test_at_the_quota_the_customer_is_unchanged(settings_for):
    settings = settings_for(region="us-east-1")
    cid = create_customer(settings, name="Acme", email="a@acme.example", notify=lambda m: None)[
        "customer_id"
    ]
    plane = FakeControlPlane(fail="ServiceQuotaExceededException")
    with pytest.raises(AwsError, match="quota of application inference profiles"):
        add_inference_profile(settings, cid, HAIKU, bedrock=plane, account=ACCOUNT)
    assert show_customer(settings, cid)["inference_profiles"] is None


def with_profile(world, profiles):
    cid = put_customer(world.ddb, world.tables)
    world.ddb.update_item(
        TableName=world.tables.customers, Key={"customer_id": {"S": cid}},
        UpdateExpression="SET inference_profiles = :p",
        ExpressionAttributeValues={":p": {"M": {k: {"S": v} for k, v in profiles.items()}}},
    )  # fmt: skip
    return put_token(world.ddb, world.tables, cid)


def test_the_proxy_calls_bedrock_through_the_customers_profile(world):
    token = with_profile(world, {HAIKU: ARN})
    assert world.proxy.handle(event(claude_body(model=HAIKU), token))["statusCode"] == 200
    op, params = world.bedrock.calls[-1]
    assert params["modelId"] == ARN
    line = world.logs[-1]
    assert line["model_id"] == HAIKU and line["foundation_model"] == HAIKU


def test_the_customers_own_profile_arn_resolves_to_its_model(world):
    token = with_profile(world, {"us." + HAIKU: ARN})
    assert world.proxy.handle(event(claude_body(model=ARN), token))["statusCode"] == 200
    assert world.bedrock.calls[-1][1]["modelId"] == ARN
    assert world.logs[-1]["foundation_model"] == HAIKU  # priced and limited as Haiku
    other = put_token(world.ddb, world.tables, put_customer(world.ddb, world.tables))
    world.proxy.handle(event(claude_body(model=ARN), other))
    assert world.logs[-1]["foundation_model"] == ARN  # someone else's: kept whole, as before


def test_a_damaged_profile_map_is_refused_strictly():
    base = {"customer_id": "c", "status": "active"}
    assert read_customer_record({**base, "inference_profiles": {HAIKU: ARN}}).inference_profiles
    for bad in ({HAIKU: "arn:aws:bedrock:us-east-1::foundation-model/x"}, [ARN], {HAIKU: 3}):
        with pytest.raises(InvalidRecord):
            read_customer_record({**base, "inference_profiles": bad})


def test_the_role_may_invoke_this_stages_profiles_and_their_models_only_through_them():
    import json

    from bedrock_billing.deploy.template import build_template
    from tests.deploy_fixtures import config

    cfg = config(models=(HAIKU, "us.anthropic.claude-3-5-sonnet-20241022-v2:0"))
    proxy = build_template(cfg)["Resources"]["ProxyRole"]["Properties"]["Policies"][0]
    statements = proxy["PolicyDocument"]["Statement"]
    (own,) = [s for s in statements if "application-inference-profile" in json.dumps(s["Resource"])]
    tag = "aws:ResourceTag/bedrock-billing:stage"
    assert own["Condition"] == {"StringEquals": {tag: cfg.stage}}
    (routed,) = [s for s in statements
                 if "application-inference-profile" in json.dumps(s.get("Condition"))]  # fmt: skip
    text = json.dumps(routed["Resource"])
    assert f"${{AWS::Region}}::foundation-model/{HAIKU}" in text
    assert "us-west-2::foundation-model/anthropic.claude-3-5-sonnet-20241022-v2:0" in text


@pytest.mark.usefixtures("moto_aws")
def test_create_with_profiles_shows_the_token_even_when_a_profile_fails(monkeypatch):
    import json

    from bedrock_billing.services import inference_profiles
    from tests.cli_helpers import run

    plane = FakeControlPlane()
    monkeypatch.setattr(inference_profiles, "control_plane", lambda settings: plane)
    args = ["create", "--name", "Acme", "--email", "a@acme.example", "--region", "us-east-1",
            "--inference-profile", HAIKU, "-o", "json"]  # fmt: skip
    made = json.loads(run(*args).stdout)
    assert made["token"].startswith("bbk_") and set(made["inference_profiles"]) == {HAIKU}
    run(*args[:-4], "--inference-profile", "not a model", expect=2)
    plane.fail = "ServiceQuotaExceededException"
    failed = run(*args, expect=3)
    assert json.loads(failed.stdout)["token"].startswith("bbk_")  # shown once, even so
    assert "quota of application inference profiles" in failed.stderr
