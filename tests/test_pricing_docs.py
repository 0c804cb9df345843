"""docs/pricing.md's worked examples are tests: each TOML block with an ``# expect:`` line
is priced for June 2025 and its stated totals are checked."""

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_billing.core.pricing import CreditGrant, parse_price_book, rate_period
from bedrock_billing.core.usage import UsageRow

DOC = Path(__file__).resolve().parent.parent / "docs" / "pricing.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
EXAMPLES = [b for b in BLOCKS if "# expect:" in b]
PERIOD = "2025-06"


def _fields(block: str, tag: str) -> list[dict[str, str]]:
    return [
        dict(pair.split("=", 1) for pair in line.split()[2:])
        for line in block.splitlines()
        if line.startswith(f"# {tag}:")
    ]


def test_the_doc_has_an_example_for_every_charge_model():
    text = "\n".join(EXAMPLES)
    for charge_type in ("per_request", "per_token", "graduated", "volume", "package", "per_unit"):
        assert f'type = "{charge_type}"' in text, charge_type
    for feature in ("base_fee", "minimum", "discounts", "# grant:", "markup", "prices ="):
        assert feature in text, feature
    assert len(EXAMPLES) >= 11


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_toml_block_is_a_valid_price_book(block):
    parse_price_book(block, "docs/pricing.md")


@pytest.mark.parametrize("block", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_worked_example_totals(block):
    book = parse_price_book(block, "docs/pricing.md")
    rows = []
    for usage in _fields(block, "usage"):
        counts = {k: int(v) for k, v in usage.items() if k not in ("model", "day")}
        rows.append(UsageRow(date.fromisoformat(usage.get("day", "2025-06-01")),
                             usage["model"], **{"requests": 0, "input_tokens": 0,
                                                "output_tokens": 0} | counts))  # fmt: skip
    grants = [
        CreditGrant(
            id=g["id"],
            amount=Decimal(g["amount"]),
            effective=date.fromisoformat(g["effective"]),
            expires=date.fromisoformat(g["expires"]) if "expires" in g else None,
            priority=int(g.get("priority", 0)),
        )
        for g in _fields(block, "grant")
    ]
    out = rate_period(book, PERIOD, rows, grants=grants).to_dict()
    (expect,) = _fields(block, "expect")
    got = {
        "subtotal": out["subtotal"],
        "true_up": out["true_up"],
        "discounts": out["discount_total"],
        "credits": out["credit_total"],
        "total": out["total"],
    }
    if "unpriced" in expect:
        got["unpriced"] = str(len(out["unpriced"]))
    assert got == expect
