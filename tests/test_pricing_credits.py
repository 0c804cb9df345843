"""Prepaid credit grants: which are usable for a period, the draw order, what stays."""

from datetime import date
from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.pricing import CreditGrant, apply_credits
from bedrock_billing.core.timeutil import Period

JUNE = Period(2025, 6)
D = Decimal


def grant(gid, amount, effective="2025-01-01", expires=None, priority=0, remaining=None):
    return CreditGrant(
        gid,
        D(amount),
        date.fromisoformat(effective),
        None if expires is None else date.fromisoformat(expires),
        priority,
        None if remaining is None else D(remaining),
    )


def drawn(result):
    return [(a.grant_id, str(a.applied), str(a.remaining), a.status) for a in result.applications]


def test_draw_order_priority_then_soonest_expiry_then_earliest_effective_then_id():
    grants = [
        grant("no-expiry", "10.00"),
        grant("late-expiry", "10.00", expires="2025-12-31"),
        grant("soon-expiry", "10.00", expires="2025-07-31"),
        grant("b-same", "10.00", effective="2025-02-01", expires="2025-07-31"),
        grant("a-same", "10.00", effective="2025-02-01", expires="2025-07-31"),
        grant("low-priority", "10.00", priority=1, expires="2025-06-30"),
    ]
    result = apply_credits(D("45.00"), grants, JUNE)
    assert drawn(result) == [
        ("soon-expiry", "10.00", "0.00", "usable"),
        ("a-same", "10.00", "0.00", "usable"),
        ("b-same", "10.00", "0.00", "usable"),
        ("late-expiry", "10.00", "0.00", "usable"),
        ("no-expiry", "5.00", "5.00", "usable"),
        ("low-priority", "0.00", "10.00", "usable"),
    ]
    assert result.applied == D("45.00") and result.amount_after == 0


def test_credits_larger_than_the_charge_keep_their_rest():
    result = apply_credits(D("12.34"), [grant("g", "100.00")], JUNE)
    assert drawn(result) == [("g", "12.34", "87.66", "usable")]
    assert result.amount_after == 0


def test_grant_not_yet_effective_or_expired_is_not_used():
    result = apply_credits(
        D("50.00"),
        [
            grant("future", "10.00", effective="2025-07-01"),
            grant("expired", "10.00", expires="2025-06-29"),
            grant("last-day", "10.00", effective="2025-06-30", expires="2025-06-30"),
            grant("spent", "10.00", remaining="0.00"),
        ],
        JUNE,
    )
    assert drawn(result) == [
        ("last-day", "10.00", "0.00", "usable"),
        ("expired", "0.00", "10.00", "expired"),
        ("spent", "0.00", "0.00", "empty"),
        ("future", "0.00", "10.00", "not_yet_effective"),
    ]
    assert result.amount_after == D("40.00")


def test_remaining_balance_is_what_can_be_drawn():
    result = apply_credits(D("50.00"), [grant("g", "100.00", remaining="30.00")], JUNE)
    assert drawn(result) == [("g", "30.00", "0.00", "usable")]
    assert result.amount_after == D("20.00")


def test_nothing_due_draws_nothing():
    assert apply_credits(D("0"), [grant("g", "5.00")], JUNE).applied == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": "-1.00"}, "negative"),
        ({"amount": "1.001"}, "2 decimal places"),
        ({"amount": "5.00", "remaining": "6.00"}, "more than the amount"),
        ({"amount": "5.00", "effective": "2025-06-02", "expires": "2025-06-01"}, "before"),
    ],
)
def test_bad_grants_are_refused(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        grant("g", **kwargs)


def test_duplicate_grant_ids_are_refused():
    with pytest.raises(InvalidInput, match="share an id"):
        apply_credits(D("1"), [grant("g", "1.00"), grant("g", "2.00")], JUNE)
