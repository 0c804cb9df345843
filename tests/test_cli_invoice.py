"""Invoices end to end over moto: a month of usage for customers on different plans,
finalized twice (the second run issues nothing), stored exactly as first printed; two
finalizations at once store one invoice; credits drawn once."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.services import customers as customer_service
from bedrock_billing.services.invoices import run_invoices
from bedrock_billing.settings import resolve_settings
from tests.cli_helpers import run, run_json
from tests.usage_helpers import batch_put, counter_items, generate

BOOK = str(Path(__file__).parent / "data" / "pricebook.toml")
PLANS = ["payg", "requests", "pro", "tiered", None]


def _seed(endpoint_url: str | None = None):
    """Five customers (one per plan, one on the default) with a month of usage in 2026-10."""
    settings = resolve_settings(stage="test", endpoint_url=endpoint_url)
    customer_service.init_tables(settings)
    clock = FixedClock("2026-09-15T00:00:00Z")
    ids = []
    for i, plan in enumerate(PLANS):
        created = customer_service.create_customer(
            settings,
            name=f"Customer {i}",
            email=f"c{i}@x.example",
            plan=plan,
            clock=clock,
            price_book=BOOK,
        )
        ids.append(created["customer_id"])
    gen = generate(customers=len(ids))
    # re-key the generated usage onto the real customers
    gen.expected = {
        new: gen.expected.get(old, {}) for old, new in zip(gen.customers, ids, strict=True)
    }
    ddb = settings.client("dynamodb")
    batch_put(ddb, settings.tables.usage, counter_items(gen))
    return settings, ids


@pytest.fixture
def seeded(moto_aws):
    return _seed()


def finalize_all(*extra, expect=0):
    # The list prices behind payg price no cache tokens of some generated models: issue anyway.
    return run_json(
        "invoice", "--all", "--period", "2026-10", "--finalize", "--stage", "test",
        "--price-book", BOOK, "--allow-unpriced", *extra, expect=expect,
    )  # fmt: skip


def stored_invoices():
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.scan(TableName="bedrock-billing-test-invoices")["Items"]
    return {
        i["customer_id"]["S"]: json.loads(i["document"]["S"])
        for i in items
        if i["sk"]["S"].startswith("INVOICE#") and "#r" not in i["sk"]["S"]
    }


def test_finalize_twice_issues_once_and_stores_what_it_printed(seeded):
    settings, ids = seeded
    first = finalize_all()
    assert first["summary"]["issued"] == len(ids)
    assert {i["plan"] for i in first["invoices"]} == {"payg", "requests", "pro", "tiered"}
    stored = stored_invoices()
    assert {i["customer_id"]: i for i in first["invoices"]} == stored
    for doc in first["invoices"]:
        lines = sum(Decimal(line["amount"]) for line in doc["lines"])
        assert lines - Decimal(doc["discount_total"]) - Decimal(doc["credit_total"]) == Decimal(
            doc["total"]
        )
        assert doc["status"] == "issued" and doc["invoice_number"].startswith("BB-202610-")
    second = finalize_all()
    assert second["summary"]["issued"] == 0 and second["summary"]["existing"] == len(ids)
    assert second["invoices"] == first["invoices"]
    assert stored_invoices() == stored


def test_pro_plan_has_base_fee_included_usage_and_true_up(seeded):
    settings, ids = seeded
    pro = run_json(
        "invoice", "--customer-id", ids[2], "--period", "2026-10", "--stage", "test",
        "--price-book", BOOK,
    )["invoices"][0]  # fmt: skip
    kinds = [line["kind"] for line in pro["lines"]]
    assert kinds[0] == "base_fee" and "included" in kinds
    assert Decimal(pro["total"]) >= Decimal("60.00")  # the minimum commitment
    assert pro["status"] == "draft" and stored_invoices() == {}


def test_drafts_by_default_and_no_usage_customer(seeded, monkeypatch):
    settings, ids = seeded
    customer_service.create_customer(settings, name="Idle", email="idle@x.example")
    out = run_json(
        "invoice", "--all", "--period", "2026-10", "--stage", "test", "--price-book", BOOK
    )
    assert out["summary"]["drafts"] == len(ids) + 1
    assert out["summary"]["customers_without_usage"] == 1
    assert stored_invoices() == {}


def test_finalize_refuses_before_the_settling_window(seeded):
    result = run(
        "invoice", "--all", "--period", "2099-01", "--finalize", "--stage", "test", expect=2
    )
    assert "has not started" in result.stderr


def test_one_customer_failing_does_not_stop_the_others(seeded):
    settings, ids = seeded
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.update_item(
        TableName="bedrock-billing-test-customers",
        Key={"customer_id": {"S": ids[0]}},
        UpdateExpression="SET plan_history = :h",
        ExpressionAttributeValues={
            ":h": {"L": [{"M": {"plan": {"S": "gone"}, "from_period": {"S": "2026-01"}}}]}
        },
    )
    result = run(
        "invoice", "--all", "--period", "2026-10", "--finalize", "--stage", "test",
        "--price-book", BOOK, "--allow-unpriced", "-o", "json", expect=4,
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert [f["customer_id"] for f in data["failures"]] == [ids[0]]
    assert data["summary"]["issued"] == len(ids) - 1
    assert "1 failure(s)" in result.stderr


def test_credits_are_drawn_in_order_once(seeded):
    settings, ids = seeded
    cid = ids[1]  # per request: a small bill
    run_json("credits", "add", "--customer-id", cid, "--amount", "0.05", "--priority", "2",
             "--effective", "2026-01-01", "--stage", "test")  # fmt: skip
    big = run_json("credits", "add", "--customer-id", cid, "--amount", "1000.00",
                   "--priority", "1", "--effective", "2026-01-01", "--stage", "test")  # fmt: skip
    draft = run_json("invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
                     "--price-book", BOOK)["invoices"][0]  # fmt: skip
    assert draft["total"] == "0.00" and Decimal(draft["credit_total"]) == Decimal(draft["subtotal"])
    assert draft["credits"][0]["grant_id"] == big["grant_id"]
    run_json("invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
             "--price-book", BOOK, "--finalize")  # fmt: skip
    listed = run_json("credits", "list", "--customer-id", cid, "--stage", "test")
    remaining = {g["grant_id"]: g["remaining"] for g in listed["grants"]}
    assert Decimal(remaining[big["grant_id"]]) == Decimal("1000.00") - Decimal(draft["subtotal"])
    # finalizing again draws nothing more
    run_json("invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
             "--price-book", BOOK, "--finalize")  # fmt: skip
    again = run_json("credits", "list", "--customer-id", cid, "--stage", "test")
    assert {g["grant_id"]: g["remaining"] for g in again["grants"]} == remaining


def test_documents_are_written_one_per_invoice(seeded, tmp_path):
    settings, ids = seeded
    run("invoice", "--all", "--period", "2026-10", "--stage", "test", "--price-book", BOOK,
        "--format", "html", "--out", str(tmp_path / "docs"))  # fmt: skip
    files = sorted((tmp_path / "docs").glob("*.html"))
    assert len(files) == len(ids)
    text = files[0].read_text()
    assert "<h1>DRAFT Invoice BB-202610-" in text and "Total" in text


def test_quote_and_price_export_touch_no_aws(tmp_path):
    # no moto here: any AWS call would fail for lack of credentials and region
    quote = run_json(
        "quote",
        "--price-book",
        BOOK,
        "--plan",
        "pro",
        "--period",
        "2026-10",
        "--model",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "--requests",
        "2600",
    )
    assert quote["subtotal"] == "59.00" and quote["true_up"] == "1.00" and quote["total"] == "60.00"
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "date,model,requests,input_tokens,output_tokens\n"
        "2026-10-01,anthropic.claude-3-haiku-20240307-v1:0,10,1000000,100000\n"
        "2026-10-02,anthropic.claude-3-haiku-20240307-v1:0,5,1000000,100000\n"
    )
    q2 = run_json("quote", "--price-book", BOOK, "--plan", "payg", "--usage", str(usage))
    # 2,000,000 x 0.0000003 = 0.60; 200,000 x 0.0000015 = 0.30
    assert q2["total"] == "0.90"
    bad = tmp_path / "bad.csv"
    bad.write_text("date,model,requests\n2026-10-01,m,lots\n")
    err = run("quote", "--usage", str(bad), expect=2)
    assert "line 2" in err.stderr
    prices = run("prices", "export", "--price-book", BOOK, "--plan", "payg").stdout
    data = json.loads(prices)
    assert data["models"]["anthropic.claude-3-haiku-20240307-v1:0"]["input"] == "0.0000003"


def test_two_finalizations_at_once_store_one_invoice(moto_server, aws_credentials):
    settings, ids = _seed(moto_server)
    clock = FixedClock("2026-11-05T00:00:00Z")
    results, barrier = [], threading.Barrier(2)

    def finalize():
        own = resolve_settings(stage="test", endpoint_url=moto_server)
        barrier.wait()
        results.append(
            run_invoices(
                own,
                period="2026-10",
                customer_id=ids[0],
                finalize=True,
                price_book=BOOK,
                clock=clock,
                allow_unpriced=True,
            )  # fmt: skip
        )

    threads = [threading.Thread(target=finalize) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(r.outcomes[0]["outcome"] for r in results)
    assert outcomes == ["existing", "issued"]
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    items = ddb.query(
        TableName="bedrock-billing-test-invoices",
        KeyConditionExpression="customer_id = :c",
        ExpressionAttributeValues={":c": {"S": ids[0]}},
    )["Items"]
    assert len(items) == 1
    docs = [r.invoices[0] for r in results]
    assert docs[0] == docs[1] == json.loads(items[0]["document"]["S"])


def test_a_wrong_invoice_is_voided_by_a_credit_note_then_reissued(seeded):
    settings, ids = seeded
    cid = ids[1]
    grant = run_json("credits", "add", "--customer-id", cid, "--amount", "1.00",
                     "--effective", "2026-01-01", "--stage", "test")  # fmt: skip
    args = ["--customer-id", cid, "--period", "2026-10", "--stage", "test"]
    first = run_json("invoice", *args, "--price-book", BOOK, "--finalize")["invoices"][0]
    drawn = Decimal(first["credit_total"])
    assert drawn > 0
    run("void-invoice", *args, expect=2)  # --reason is required
    note = run_json("void-invoice", *args, "--reason", "wrong plan")
    assert note["invoice_number"] == first["invoice_number"] and note["amount"] == first["total"]
    assert note["credit_note_number"].startswith("CN-")
    # the credit it drew is given back; the invoice itself is unchanged
    listed = run_json("credits", "list", "--customer-id", cid, "--stage", "test")
    assert listed["grants"][0]["remaining"] == "1.00" and grant["remaining"] == "1.00"
    assert stored_invoices()[cid] == first
    again = run("void-invoice", *args, "--reason", "twice", expect=1)
    assert "already voided" in again.stderr
    second = run_json("invoice", *args, "--price-book", BOOK, "--finalize")
    revised = second["invoices"][0]
    assert second["outcomes"][0]["outcome"] == "issued"
    assert revised["revision"] == 2 and revised["invoice_number"] == first["invoice_number"] + "-R2"
    third = run_json("invoice", *args, "--price-book", BOOK, "--finalize")
    assert third["outcomes"][0]["outcome"] == "existing" and third["invoices"][0] == revised


def test_quote_says_on_stderr_what_the_plan_does_not_price():
    # a mistyped model must not look like a free month: the note names it, as invoice does
    result = run(
        "quote", "--plan", "list", "--model", "anthropic.claude-3-haiku-2024",
        "--requests", "1", "--input-tokens", "1000",
    )  # fmt: skip
    assert "usage not priced by the plan" in result.stderr
    assert "anthropic.claude-3-haiku-2024 input_tokens" in result.stderr
    priced = run(
        "quote", "--plan", "list", "--model", "anthropic.claude-3-haiku-20240307-v1:0",
        "--input-tokens", "1000",
    )  # fmt: skip
    assert "not priced" not in priced.stderr


def test_credits_add_bad_amount_names_the_option_not_a_random_grant_id(moto_aws):
    cid = run_json("create", "--name", "A", "--email", "a@a.example")["customer_id"]
    result = run("credits", "add", "--customer-id", cid, "--amount", "abc", expect=2)
    assert result.stderr == "Error: --amount: 'abc' is not a decimal number\n"


def test_a_customers_own_discount_applies_without_cloning_the_plan(seeded, tmp_path):
    settings, ids = seeded
    cid = ids[2]  # plan "pro": base fee 49.00, minimum 60.00
    args = ["--customer-id", cid, "--period", "2026-10", "--stage", "test", "--price-book", BOOK]
    before = run_json("invoice", *args)["invoices"][0]
    overrides = tmp_path / "acme.json"
    overrides.write_text(
        '{"discounts": [{"type": "percent", "percent": "10"}], "base_fee": "39.00"}'
    )
    shown = run_json("update", "--customer-id", cid, "--pricing-overrides", str(overrides),
                     "--stage", "test")  # fmt: skip
    assert shown["pricing_overrides"]["base_fee"] == "39.00"
    after = run_json("invoice", *args)["invoices"][0]
    assert after["lines"][0]["amount"] == "39.00" and before["lines"][0]["amount"] == "49.00"
    assert after["discounts"][0]["type"] == "percent"
    # the minimum still holds before the discount: 60.00 less 10% = 54.00
    assert after["total"] == "54.00"
    bad = tmp_path / "bad.json"
    bad.write_text('{"discounts": [{"type": "percent", "percent": "x"}]}')
    run("update", "--customer-id", cid, "--pricing-overrides", str(bad), "--stage", "test",
        expect=2)  # fmt: skip
    cleared = run_json("update", "--customer-id", cid, "--clear-pricing-overrides",
                       "--stage", "test")  # fmt: skip
    assert cleared["pricing_overrides"] is None
    assert run_json("invoice", *args)["invoices"][0]["total"] == before["total"]


# ---- unpriced usage is never issued silently at 0.00


def _unpriced_customer():
    """A customer on the per-token list-price plan whose October used a model no price
    book prices (a typo'd or new model id)."""
    settings = resolve_settings(stage="test")
    customer_service.init_tables(settings)
    cid = customer_service.create_customer(
        settings, name="Typo", email="t@x.example", plan="payg", price_book=BOOK,
        clock=FixedClock("2026-09-15T00:00:00Z"),
    )["customer_id"]  # fmt: skip
    counters = {"requests": 3, "input_tokens": 1200, "output_tokens": 400}
    item = {
        "customer_id": {"S": cid},
        "sk": {"S": "DAY#2026-10-07#acme.mystery-model-v1:0"},
        **{name: {"N": str(value)} for name, value in counters.items()},
    }
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=settings.tables.usage, Item=item
    )
    return cid


def test_finalize_refuses_unpriced_usage_naming_the_model_and_writes_nothing(moto_aws):
    cid = _unpriced_customer()
    args = ["invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
            "--price-book", BOOK, "--finalize"]  # fmt: skip
    for output in ("table", "json", "csv"):
        refused = run(*args, "-o", output, expect=1)
        assert "acme.mystery-model-v1:0" in refused.stderr
        assert "--allow-unpriced" in refused.stderr
        assert refused.stdout == ""
    assert stored_invoices() == {}

    issued = run_json(*args, "--allow-unpriced")
    assert issued["outcomes"][0]["outcome"] == "issued"
    assert stored_invoices()[cid]["unpriced"][0]["model"] == "acme.mystery-model-v1:0"


def test_finalize_all_issues_the_others_and_fails_the_unpriced_one(moto_aws):
    cid = _unpriced_customer()
    priced = customer_service.create_customer(
        resolve_settings(stage="test"), name="Fine", email="f@x.example", plan="pro",
        price_book=BOOK, clock=FixedClock("2026-09-15T00:00:00Z"),
    )["customer_id"]  # fmt: skip
    result = run(
        "invoice", "--all", "--period", "2026-10", "--stage", "test", "--price-book", BOOK,
        "--finalize", "-o", "json", expect=4,
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert [f["customer_id"] for f in data["failures"]] == [cid]
    assert "acme.mystery-model-v1:0" in data["failures"][0]["error"]
    assert set(stored_invoices()) == {priced}


@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_drafts_warn_about_unpriced_usage_on_stderr_in_every_format(moto_aws, output):
    cid = _unpriced_customer()
    result = run(
        "invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
        "--price-book", BOOK, "-o", output,
    )  # fmt: skip
    assert "warning: usage not priced by the plan" in result.stderr
    assert "acme.mystery-model-v1:0 input_tokens" in result.stderr


@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_quote_warns_about_unpriced_usage_on_stderr_in_every_format(output):
    result = run(
        "quote", "--plan", "list", "--model", "acme.mystery-model-v1:0",
        "--input-tokens", "1000", "-o", output,
    )  # fmt: skip
    assert "warning: usage not priced by the plan" in result.stderr
    assert "acme.mystery-model-v1:0 input_tokens" in result.stderr


def test_finalizing_sends_invoice_finalized_once_per_issued_invoice(seeded, monkeypatch):
    settings, ids = seeded
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="ops")["TopicArn"]
    monkeypatch.setenv("BEDROCK_BILLING_ALERTS_TOPIC_ARN", topic)
    first = finalize_all()
    finalize_all()  # issues nothing more: announces nothing more
    kept = run_json("webhooks", "deliveries", "--stage", "test")["deliveries"]
    assert sorted(d["customer_id"] for d in kept) == sorted(
        o["customer_id"] for o in first["outcomes"] if o["outcome"] == "issued"
    )
    assert {d["type"] for d in kept} == {"invoice.finalized"}


def test_without_a_topic_only_customers_with_a_webhook_get_invoice_finalized(seeded):
    import json as _json

    from bedrock_billing.core.alerts import webhook_key_alias
    from tests.webhook_support import Receiver

    settings, ids = seeded
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=webhook_key_alias("bedrock-billing-test"), TargetKeyId=key)
    with Receiver() as receiver:
        run_json("webhooks", "set", "--customer-id", ids[0], "--url", receiver.url,
                 "--allow-private-url", "--stage", "test")  # fmt: skip
        finalize_all()
    [(headers, body)] = receiver.received
    event = _json.loads(body)
    assert (event["type"], event["customer_id"]) == ("invoice.finalized", ids[0])
    kept = run_json("webhooks", "deliveries", "--stage", "test")["deliveries"]
    assert [(d["customer_id"], d["status"]) for d in kept] == [(ids[0], "delivered")]


def test_credits_low_is_sent_once_when_an_invoice_draws_the_balance_below(seeded, monkeypatch):
    settings, ids = seeded
    cid = ids[1]
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="ops")["TopicArn"]
    monkeypatch.setenv("BEDROCK_BILLING_ALERTS_TOPIC_ARN", topic)
    run_json("credits", "add", "--customer-id", cid, "--amount", "1000.00",
             "--effective", "2026-01-01", "--stage", "test")  # fmt: skip
    draft = run_json("invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
                     "--price-book", BOOK)["invoices"][0]  # fmt: skip
    left = Decimal("1000.00") - Decimal(draft["subtotal"])
    set_ = run_json("alerts", "set", "--customer-id", cid, "--credits-below",
                    f"{left + Decimal('0.01'):.2f}", "--stage", "test")  # fmt: skip
    assert set_["credits_below"] == f"{left + Decimal('0.01'):.2f}"
    assert set_["thresholds"] == [50, 80, 100]  # thresholds untouched
    run_json("invoice", "--customer-id", cid, "--period", "2026-10", "--stage", "test",
             "--price-book", BOOK, "--finalize")  # fmt: skip
    kept = run_json("webhooks", "deliveries", "--customer-id", cid, "--stage", "test")
    types = sorted(d["type"] for d in kept["deliveries"])
    assert types == ["credits.low", "invoice.finalized"]
    assert run(
        "alerts", "set", "--customer-id", cid, "--stage", "test", expect=2
    ).stderr.startswith("Error: give --threshold")
