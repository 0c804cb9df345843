"""Quotes: usage and grant files, flags, and the same path as invoices."""

import json
from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.pricing import (
    default_price_book,
    parse_grants_text,
    parse_usage_text,
    quote,
    read_grants_file,
    read_usage_file,
    usage_from_flags,
)
from tests.pricing_helpers import HAIKU, SONNET4

CSV = f"""date,model,requests,input_tokens,output_tokens,cache_read_input_tokens
2025-06-01,{HAIKU},10,1000000,100000,
2025-06-02,{SONNET4},5,1000,2000,300
"""


def test_csv_and_json_lines_give_the_same_rows():
    from_csv = parse_usage_text(CSV, "usage.csv")
    lines = "\n".join(
        json.dumps(
            {
                "date": r.day.isoformat(),
                "model": r.model,
                "requests": r.requests,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cache_read_input_tokens": r.cache_read_input_tokens,
            }
        )  # fmt: skip
        for r in from_csv
    )
    assert parse_usage_text(lines, "usage.jsonl") == from_csv
    assert parse_usage_text(lines, "usage") == from_csv  # sniffed
    assert from_csv[1].cache_read_input_tokens == 300


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,model,requests,input_tokens\n2025-06-01,m,1,2\n", "line 2: missing output_tokens"),
        (
            "date,model,requests,input_tokens,output_tokens\n2025-06-01,m,1,2,3\n2025-06-31,m,1,2,3\n",
            "line 3: invalid date '2025-06-31': no such day",
        ),
        ("date,model,requests,input_tokens,output_tokens\n2025-06-01,m,1.5,2,3\n",
         "line 2: requests '1.5' is not a whole number"),
        ("date,model,requests,input_tokens,output_tokens\n2025-06-01,m,-1,2,3\n",
         "line 2: requests '-1'"),
        ("date,model,requests,input_tokens,output_tokens,colour\n2025-06-01,m,1,2,3,red\n",
         "line 2: unknown field 'colour'"),
        ("date,model,requests,input_tokens,output_tokens\n2025-06-01,m,1,2,3,4\n",
         "line 2: more values than columns"),
        ('{"date": "2025-06-01"}\n{oops\n', "line 1: missing model"),
        ('{"date":"2025-06-01","model":"m","requests":1,"input_tokens":2,"output_tokens":3}\n[1]\n',
         "line 2: expected a JSON object"),
        ("", "empty file"),
        ("date,model,requests,input_tokens,output_tokens\n", "no usage rows"),
    ],
)  # fmt: skip
def test_bad_usage_files_name_the_line(text, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_usage_text(text, "usage")


def test_grant_files_csv_and_json_lines():
    grants = parse_grants_text(
        "id,amount,priority,effective,expires\npromo,25.00,1,2025-01-01,2025-12-31\n"
        ",10,,2025-02-01,\n",
        "grants.csv",
    )
    assert [(g.id, g.amount, g.priority, g.expires) for g in grants] == [
        ("promo", Decimal("25.00"), 1, grants[0].expires),
        ("line-3", Decimal("10"), 0, None),
    ]
    jl = parse_grants_text('{"amount": 12.50, "effective": "2025-01-01"}\n', "g.jsonl")
    assert jl[0].amount == Decimal("12.50")  # a JSON number is read as its exact digits
    with pytest.raises(InvalidInput, match="g.csv line 2: .*2 decimal places"):
        parse_grants_text("amount,effective\n1.234,2025-01-01\n", "g.csv")
    with pytest.raises(InvalidInput, match="line 2: priority 'high'"):
        parse_grants_text("amount,effective,priority\n1,2025-01-01,high\n", "g.csv")


def test_quote_from_flags_prices_like_an_invoice():
    rows = usage_from_flags("2025-06", HAIKU, requests=3, input_tokens=2_000_000,
                            output_tokens=400_000)  # fmt: skip
    out = quote(default_price_book(), rows).to_dict()
    assert out["period"] == "2025-06"
    assert out["total"] == "1.00"
    with pytest.raises(InvalidInput, match="whole numbers"):
        usage_from_flags("2025-06", HAIKU, requests=-1)


def test_quote_from_files_with_grants(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text(CSV)
    grants = tmp_path / "grants.csv"
    grants.write_text("amount,effective,priority,expires\n0.20,2025-06-01,0,\n")
    draft = quote(default_price_book(), read_usage_file(usage), grants=read_grants_file(grants))
    out = draft.to_dict()
    # haiku 0.25 + 0.125 -> 0.13; sonnet 0.003 -> 0.00, 0.03, cache read 300 x 0.0000003 -> 0.00
    assert out["subtotal"] == "0.41"
    assert out["credit_total"] == "0.20"
    assert out["total"] == "0.21"
    with pytest.raises(InvalidInput, match="no such file"):
        read_usage_file(tmp_path / "missing.csv")


def test_quote_refuses_rows_of_two_months():
    rows = usage_from_flags("2025-06", HAIKU, 1) + usage_from_flags("2025-07", HAIKU, 1)
    with pytest.raises(InvalidInput, match="one month"):
        quote(default_price_book(), rows)
