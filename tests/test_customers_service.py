"""The customer and token use cases called directly (services/customers.py), as a Python
caller would, against moto in process; the CLI tests cover the same through CliRunner."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from bedrock_billing.core.errors import Conflict
from bedrock_billing.core.timeutil import FixedClock, parse_instant
from bedrock_billing.core.tokens import hash_token
from bedrock_billing.services import customers as service
from bedrock_billing.stores.customers import CustomerStore

BOOK = str(Path(__file__).parent / "data" / "pricebook.toml")

NOW = parse_instant("2026-10-15T12:00:00Z")


def token_items(settings, customer_id):
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = client.scan(TableName=settings.tables.tokens)["Items"]
    return {i["token_hash"]["S"]: i["state"]["S"] for i in items
            if i["customer_id"]["S"] == customer_id}  # fmt: skip


def test_revoke_that_read_before_a_rotation_does_not_strand_the_new_token(
    settings_for, monkeypatch
):
    # A revoke reads the customer, a rotation lands, then the revoke writes. Unconditioned,
    # the revoke dropped current_token_hash while the rotated token stayed active: a token
    # that works at the proxy but that `show` no longer lists and `revoke-token` cannot stop.
    settings = settings_for()
    clock = FixedClock(NOW)
    cid = service.create_customer(settings, name="Acme", email="a@acme.example", clock=clock)[
        "customer_id"
    ]
    stale = CustomerStore(settings.client("dynamodb"), settings.tables).get(cid)
    rotated = service.rotate_token(settings, cid, clock=clock)
    with monkeypatch.context() as patch, pytest.raises(Conflict):
        patch.setattr(CustomerStore, "get", lambda self, customer_id: dict(stale))
        service.revoke_token(settings, cid, clock=clock)
    item = CustomerStore(settings.client("dynamodb"), settings.tables).get(cid)
    active = {h for h, state in token_items(settings, cid).items() if state == "active"}
    assert active == {hash_token(rotated["token"])}
    assert item["current_token_hash"] == hash_token(rotated["token"])


def test_revoke_then_show_lists_no_working_token(settings_for):
    settings = settings_for()
    clock = FixedClock(NOW)
    cid = service.create_customer(settings, name="Acme", email="a@acme.example", clock=clock)[
        "customer_id"
    ]
    service.rotate_token(settings, cid, clock=clock)
    result = service.revoke_token(settings, cid, clock=clock)
    assert len(result["revoked"]) == 2
    assert set(token_items(settings, cid).values()) == {"revoked"}
    assert service.show_customer(settings, cid, clock=clock)["tokens"] == []


def test_cli_over_moto_server_pages_rotates_and_stores_no_token(moto_server, aws_credentials):
    # Issue 3's acceptance runs against moto's server on loopback through --endpoint-url
    # (the other CLI tests use moto in process); pages far smaller than the customer count.
    import json

    from tests.cli_helpers import run

    common = ("--endpoint-url", moto_server, "--stage", "pages", "--output", "json")
    shown = []
    for i in range(12):
        out = run("create", "--name", f"C{i:02d}", "--email", f"c{i}@x.example", *common)
        shown.append(json.loads(out.stdout))
    assert all(c["customer_id"] and c["token"].startswith("bbk_") for c in shown)
    listed = json.loads(run("list", "--page-size", "2", *common).stdout)
    assert [c["name"] for c in listed["customers"]] == [f"C{i:02d}" for i in range(12)]
    rotated = json.loads(
        run("update-token", "--customer-id", shown[0]["customer_id"], *common).stdout
    )
    tokens = [c["token"] for c in shown] + [rotated["token"]]
    client = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    dump = ""
    for table in client.list_tables()["TableNames"]:
        if "-pages-" in table:
            for page in client.get_paginator("scan").paginate(TableName=table):
                dump += repr(page["Items"])
    assert hash_token(rotated["token"]) in dump
    assert not [t for t in tokens if t in dump or t[4:20] in dump]


def test_a_plan_change_racing_another_update_is_refused_not_lost(settings_for, monkeypatch):
    from bedrock_billing.core.errors import Conflict
    from bedrock_billing.core.timeutil import FixedClock
    from bedrock_billing.services import customers as svc
    from bedrock_billing.stores.customers import CustomerStore

    settings = settings_for()
    clock = FixedClock("2026-10-10T00:00:00Z")
    cid = svc.create_customer(
        settings, name="A", email="a@a.example", plan="payg", clock=clock, price_book=BOOK
    )["customer_id"]
    real_get = CustomerStore.get
    interfered = []

    def get_then_someone_else_writes(self, customer_id):
        item = real_get(self, customer_id)
        if not interfered:
            interfered.append(True)
            clock.advance("1s")
            svc.update_customer(settings, customer_id, plan="pro", clock=clock, price_book=BOOK)
        return item

    monkeypatch.setattr(CustomerStore, "get", get_then_someone_else_writes)
    with pytest.raises(Conflict):
        svc.update_customer(settings, cid, plan="tiered", clock=clock, price_book=BOOK)
    monkeypatch.setattr(CustomerStore, "get", real_get)
    history = svc.show_customer(settings, cid, clock=clock)["plan_history"]
    assert [h["plan"] for h in history] == ["payg", "pro"]


@pytest.mark.parametrize("which", ["current", "previous"])
def test_rotating_to_one_of_the_customers_own_tokens_is_a_conflict_not_an_aws_error(
    settings_for, which
):
    # The new token's Put and the old token's update named the same item: DynamoDB refused
    # the whole transaction with a ValidationException, shown as an AWS failure (exit 3).
    settings = settings_for()
    clock = FixedClock(NOW)
    first = service.create_customer(settings, name="Acme", email="a@acme.example", clock=clock)
    second = service.rotate_token(settings, first["customer_id"], clock=clock)
    reused = second["token"] if which == "current" else first["token"]
    with pytest.raises(Conflict, match="already in use"):
        service.rotate_token(settings, first["customer_id"], token=reused, clock=clock)


def test_rotating_to_another_customers_token_says_the_token_is_in_use(settings_for):
    # It said "the customer's tokens changed while rotating: try again", which no retry fixes.
    settings = settings_for()
    clock = FixedClock(NOW)
    acme = service.create_customer(settings, name="Acme", email="a@acme.example", clock=clock)
    globex = service.create_customer(settings, name="Globex", email="g@gx.example", clock=clock)
    with pytest.raises(Conflict, match="already in use"):
        service.rotate_token(settings, globex["customer_id"], token=acme["token"], clock=clock)
