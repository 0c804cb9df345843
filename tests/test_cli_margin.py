"""On the sandbox: traffic through the proxy, the sandbox's own CUR (``sandbox-bill``),
``reconcile --against cur`` (clean, open, a planted price) and ``report margin``, whose rows
add up to the invoices' totals to the cent, with AWS cost from the book or from the bill."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import requests

from tests.cli_helpers import run, run_json

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"


def send(box, token, model):
    body = {"modelId": model, "anthropic_version": "bedrock-2023-05-31", "max_tokens": 40,
            "messages": [{"role": "user", "content": "Tell me about margins."}]}  # fmt: skip
    answer = requests.post(box.proxy_url, json=body, timeout=30,
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_bill_reconcile_and_margin_on_the_sandbox(tls_sandbox, sandbox_customer, tmp_path,
                                                   monkeypatch):  # fmt: skip
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    box = tls_sandbox
    a, b = sandbox_customer(), sandbox_customer()
    for _ in range(2):
        send(box, a["token"], HAIKU)
    send(box, b["token"], SONNET)
    box.log_sink.flush()
    period = datetime.now(UTC).strftime("%Y-%m")
    where = ["--endpoint-url", box.aws_endpoint_url, "--region", box.region]

    written = run_json("sandbox-bill", "--period", period, "--final", *where)
    assert written["line_items"] > 0 and written["final"] is True
    clean = run_json("reconcile", "--against", "cur", "--period", period, *where)
    assert clean["differences"] == [] and clean["final"] is True

    run_json("sandbox-bill", "--period", period, "--open", *where)
    run("reconcile", "--against", "cur", "--period", period, *where, expect=6)

    aws = tmp_path / "aws.toml"
    aws.write_text(f'[models."{HAIKU}"]\nname = "Claude 3 Haiku"\n'
                   'input = "0.0000005"\noutput = "0.00000125"\n')  # fmt: skip
    run_json("sandbox-bill", "--period", period, "--final", "--price-book", str(aws), *where)
    result = run("reconcile", "--against", "cur", "--period", period, "--tolerance", "0",
                 *where, "-o", "json", expect=5)  # fmt: skip
    kinds = {(d["kind"], d["model"], d["token_type"])
             for d in json.loads(result.stdout)["differences"]}  # fmt: skip
    assert kinds == {("price", HAIKU, "input")}

    invoices = run_json("invoice", "--all", "--period", period, *where)
    margin = run_json("report", "margin", "--period", period, *where)
    totals = margin["totals"]
    assert totals["invoiced"] == invoices["summary"]["total_billed"]
    assert Decimal(totals["revenue"]) == sum(Decimal(r["revenue"]) for r in margin["rows"])
    assert Decimal(totals["revenue"]) - Decimal(totals["credits"]) == Decimal(totals["invoiced"])
    mine = [r for r in margin["rows"] if r["customer_id"] == a["customer_id"]]
    assert {r["model"] for r in mine} == {HAIKU}
    margins = [Decimal(r["margin"]) for r in margin["rows"]]
    assert margins == sorted(margins, reverse=True)

    chart = tmp_path / "margin.svg"
    billed = run_json("report", "margin", "--period", period, "--against", "cur",
                      "--chart", str(chart), *where)  # fmt: skip
    assert billed["against"] == "cur" and chart.read_text().startswith("<svg")
    cur_total = sum(Decimal(r["cur_cost"]) for r in billed["rows"])
    assert Decimal(billed["totals"]["aws_cost"]) == cur_total
    assert billed["totals"]["invoiced"] == totals["invoiced"]
    csv = run("report", "margin", "--period", period, *where, "-o", "csv").stdout
    assert csv.splitlines()[0].startswith("customer_name,customer_id,model,revenue")
