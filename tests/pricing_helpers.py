"""Small builders shared by the pricing tests."""

from __future__ import annotations

from datetime import date

from bedrock_billing.core.pricing import parse_price_book
from bedrock_billing.core.usage import UsageRow

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"


def book(toml: str):
    return parse_price_book(toml, "test book")


def row(day: str = "2025-06-01", model: str = HAIKU, requests: int = 0, inp: int = 0,
        out: int = 0, cread: int = 0, cwrite: int = 0) -> UsageRow:  # fmt: skip
    return UsageRow(date.fromisoformat(day), model, requests, inp, out, cread, cwrite)


def amounts(draft) -> list[str]:
    return [line["amount"] for line in draft.to_dict()["lines"]]
