"""Customer and token items edited outside the CLI: read strictly, refused, never unlimited.

The proxy and the stores read items through one codec (core/items.py); the proxy then reads
a customer's limits strictly (core/customers.py). A damaged item refuses the customer with
``customer_record_invalid`` (503), which the stack's alarm counts, and ``show`` names the
bad field.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_billing.core.items import ItemError, from_item, to_item
from bedrock_billing.core.tokens import hash_token
from tests import proxy_support
from tests.cli_helpers import run
from tests.proxy_support import HAIKU, SONNET, claude_body, event, put_customer, put_token

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def call(w, token, model=HAIKU):
    response = w.proxy.handle(event(claude_body(model=model), token))
    return response["statusCode"], json.loads(response["body"])


def damage(w, table: str, key: dict, **attributes) -> None:
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values = {f":v{i}": value for i, value in enumerate(attributes.values())}
    w.ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(names))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def usage_of(w, customer_id: str) -> list[dict]:
    return w.ddb.query(
        TableName=w.tables.usage,
        KeyConditionExpression="customer_id = :c",
        ExpressionAttributeValues={":c": {"S": customer_id}},
    )["Items"]


# Each of these was served (unlimited, every model) or answered 500 before strict reading.
DAMAGED_CUSTOMER = {
    "limit stored as a string": {"daily_request_limit": {"S": "1"}},
    "limit stored as a fraction": {"daily_request_limit": {"N": "1.5"}},
    "token limit as a boolean": {"monthly_token_limit": {"BOOL": True}},
    "per-minute limit negative": {"requests_per_minute": {"N": "-3"}},
    "allowed_models as a string": {"allowed_models": {"S": SONNET}},
    "allowed_models holding a number": {"allowed_models": {"L": [{"N": "7"}]}},
    "budget that is not an amount": {"monthly_budget": {"S": "lots"}},
    "budget stored as a number": {"monthly_budget": {"N": "5"}},
    "status not a known one": {"status": {"S": "ACTIVE"}},
}


@pytest.mark.parametrize("damaged", DAMAGED_CUSTOMER.values(), ids=list(DAMAGED_CUSTOMER))
def test_a_damaged_customer_item_is_refused_with_its_own_code_and_never_served(world, damaged):
    cid = put_customer(world.ddb, world.tables, allowed_models=[SONNET])
    token = put_token(world.ddb, world.tables, cid)
    damage(world, world.tables.customers, {"customer_id": {"S": cid}}, **damaged)

    status, body = call(world, token, model=HAIKU)

    assert status == 503
    assert body["error"]["code"] == "customer_record_invalid"
    assert "Retry-After" not in json.dumps(body)
    assert world.bedrock.calls == []  # never reached Bedrock
    assert usage_of(world, cid) == []  # nothing admitted, nothing counted
    line = world.logs[-1]
    assert line["error_code"] == "customer_record_invalid"
    assert line["status"] == 503 and line["event_type"] == "proxy_refused"


def test_a_damaged_token_item_is_refused_the_same_way(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    damage(
        world,
        world.tables.tokens,
        {"token_hash": {"S": hash_token(token)}},
        expires_at={"S": "next tuesday"},
    )
    status, body = call(world, token)
    assert (status, body["error"]["code"]) == (503, "customer_record_invalid")
    assert world.bedrock.calls == []


def test_a_revoked_token_still_says_revoked_when_its_customer_item_is_damaged(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid, state="revoked")
    damage(world, world.tables.customers, {"customer_id": {"S": cid}}, status={"N": "1"})
    assert call(world, token)[1]["error"]["code"] == "token_revoked"


def test_the_refusal_is_cached_briefly_and_a_fixed_item_is_served_again(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    key = {"customer_id": {"S": cid}}
    damage(world, world.tables.customers, key, daily_request_limit={"S": "5"})
    for _ in range(3):
        assert call(world, token)[0] == 503
    assert world.calls.count("GetItem") == 2  # one lookup (token + customer), then cached

    damage(world, world.tables.customers, key, daily_request_limit={"N": "5"})
    world.clock.advance(timedelta(seconds=world.proxy.config.negative_cache_ttl))
    assert call(world, token)[0] == 200


def test_well_formed_items_keep_their_limits(world):
    cid = put_customer(
        world.ddb,
        world.tables,
        daily_request_limit=1,
        monthly_budget="10.00",
        allowed_models=[HAIKU],
    )
    token = put_token(world.ddb, world.tables, cid)
    assert call(world, token)[0] == 200
    assert call(world, token)[1]["error"]["code"] == "daily_request_limit_exceeded"
    assert call(world, token, model=SONNET)[1]["error"]["code"] == "model_not_allowed"


# ---- show names the bad field


@pytest.mark.usefixtures("moto_aws")
def test_show_names_each_bad_field_and_warns_on_stderr():
    created = json.loads(
        run("create", "--name", "Acme", "--email", "a@acme.example", "-o", "json").stdout
    )
    cid = created["customer_id"]
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.update_item(
        TableName="bedrock-billing-prod-customers",
        Key={"customer_id": {"S": cid}},
        UpdateExpression="SET daily_request_limit = :d, allowed_models = :m",
        ExpressionAttributeValues={":d": {"S": "100"}, ":m": {"S": HAIKU}},
    )
    result = run("show", cid, "-o", "json")
    problems = json.loads(result.stdout)["record_problems"]
    assert [p.split(" ")[0] for p in problems] == ["daily_request_limit", "allowed_models"]
    assert "'100'" in problems[0]
    assert "daily_request_limit" in result.stderr and "allowed_models" in result.stderr
    assert "refuses this customer" in result.stderr

    table = run("show", cid)
    assert "daily_request_limit" in table.stderr

    # the CLI's own commands repair it
    run("update-limits", "--customer-id", cid, "--daily-limit", "100", "--allowed-models", "all")
    assert json.loads(run("show", cid, "-o", "json").stdout)["record_problems"] == []


@pytest.mark.usefixtures("moto_aws")
def test_show_of_a_sound_customer_reports_no_problem():
    created = json.loads(
        run("create", "--name", "Acme", "--email", "a@acme.example", "-o", "json").stdout
    )
    result = run("show", created["customer_id"], "-o", "json")
    assert json.loads(result.stdout)["record_problems"] == []
    assert "warning" not in result.stderr


# ---- the one codec


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20
    )
    | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def _plain(value):
    """boto3's reading, with integral numbers as int and sets as sorted lists (ours)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if hasattr(value, "value") and type(value).__name__ == "Binary":
        return bytes(value.value)
    return value


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), VALUES, max_size=5))
def test_codec_reads_what_boto3_writes_and_boto3_reads_what_the_codec_writes(data):
    data = {k: v for k, v in data.items() if v is not None}
    ser, de = TypeSerializer(), TypeDeserializer()
    boto_item = {k: ser.serialize(v) for k, v in data.items()}
    assert from_item(boto_item) == {k: _plain(de.deserialize(v)) for k, v in boto_item.items()}
    ours = to_item(data)
    assert {k: _plain(de.deserialize(v)) for k, v in ours.items()} == from_item(ours)


def test_codec_reads_sets_and_refuses_malformed_attribute_values():
    assert from_item({"m": {"SS": ["b", "a"]}, "n": {"NS": ["2", "1.5"]}}) == {
        "m": ["a", "b"],
        "n": [Decimal("1.5"), 2],
    }
    for bad in ({"N": "ten"}, {"N": "Infinity"}, {"S": 5}, {"X": "1"}, {"S": "a", "N": "1"}, {}):
        with pytest.raises(ItemError):
            from_item({"a": bad})
    with pytest.raises(ItemError):
        to_item({"price": 0.25})  # never a float


# ---- the alarm the deploy sets on it


def test_the_stack_alarms_on_the_log_lines_of_such_refusals(world):
    import re

    from bedrock_billing.deploy.config import DeployConfig
    from bedrock_billing.deploy.template import build_template

    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    damage(world, world.tables.customers, {"customer_id": {"S": cid}}, monthly_budget={"N": "9"})
    call(world, token)
    refused_line = world.logs[-1]

    cfg = DeployConfig(models=(HAIKU,))
    resources = build_template(cfg)["Resources"]
    (flt,) = [r for r in resources.values() if r["Type"] == "AWS::Logs::MetricFilter"]
    props = flt["Properties"]
    assert props["LogGroupName"] == cfg.log_group_name
    field, value = re.fullmatch(r'\{ \$\.(\w+) = "([^"]+)" \}', props["FilterPattern"]).groups()
    assert refused_line[field] == value  # the pattern selects the proxy's own line
    (transform,) = props["MetricTransformations"]
    watched = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in resources.values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and "Namespace" in a["Properties"]
    }
    assert (transform["MetricNamespace"], transform["MetricName"]) in watched
