"""Prepaid credit grants and the order they are drawn in (docs/pricing.md, step 4).

A grant is usable for a period when it is effective by the period's last day and does not
expire before it (an expiry date means the end of that UTC day). Grants are drawn by
priority (lower first), then soonest expiry (no expiry last), then earliest effective
date, then id; what a grant does not use stays on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..errors import InvalidInput
from ..money import format_money, to_money
from ..timeutil import Period

NOTHING = Decimal("0.00")
NOT_YET_EFFECTIVE = "not_yet_effective"
EXPIRED = "expired"
EMPTY = "empty"


@dataclass(frozen=True)
class CreditGrant:
    id: str
    amount: Decimal  # granted, to the cent
    effective: date
    expires: date | None = None  # usable through the end of this UTC day
    priority: int = 0  # lower is drawn first
    remaining: Decimal | None = None  # balance before this invoice; None: the whole amount

    def __post_init__(self):
        if not self.id:
            raise InvalidInput("a credit grant needs an id")
        for label, value in (("amount", self.amount), ("remaining", self.remaining)):
            if value is not None:
                checked = to_money(value, f"grant {self.id} {label}")
                if checked < 0:
                    raise InvalidInput(f"grant {self.id}: {label} {value} is negative")
                object.__setattr__(self, label, checked)
        if self.expires is not None and self.expires < self.effective:
            raise InvalidInput(f"grant {self.id}: expires {self.expires} before it is effective")
        if self.remaining is not None and self.remaining > self.amount:
            raise InvalidInput(f"grant {self.id}: remaining is more than the amount granted")

    @property
    def balance(self) -> Decimal:
        return self.amount if self.remaining is None else self.remaining

    def status_for(self, period: Period) -> str | None:
        """None when usable for ``period``, else why not."""
        if self.effective > period.last_day:
            return NOT_YET_EFFECTIVE
        if self.expires is not None and self.expires < period.last_day:
            return EXPIRED
        if self.balance <= 0:
            return EMPTY
        return None

    def draw_order(self) -> tuple:
        return (
            self.priority,
            self.expires is None,
            self.expires or date.max,
            self.effective,
            self.id,
        )


@dataclass(frozen=True)
class CreditApplication:
    """One grant's part in an invoice: its balance before, what was applied, what is left."""

    grant_id: str
    available: Decimal
    applied: Decimal
    remaining: Decimal
    status: str = "usable"  # or not_yet_effective / expired / empty (then applied is 0)

    def to_dict(self) -> dict:
        return {
            "grant_id": self.grant_id,
            "status": self.status,
            "available": format_money(self.available),
            "applied": format_money(self.applied),
            "remaining": format_money(self.remaining),
        }


@dataclass(frozen=True)
class CreditResult:
    applications: tuple[CreditApplication, ...]  # every grant given, usable ones in draw order
    applied: Decimal
    amount_after: Decimal

    def to_dict(self) -> dict:
        return {
            "applied": format_money(self.applied),
            "amount_after": format_money(self.amount_after),
            "grants": [a.to_dict() for a in self.applications],
        }


def apply_credits(amount_due: Decimal, grants, period: Period) -> CreditResult:
    """Draw usable grants, in order, against ``amount_due`` (never below zero)."""
    ids = [g.id for g in grants]
    if len(set(ids)) != len(ids):
        raise InvalidInput("two credit grants share an id")
    due = max(NOTHING, amount_due)
    usable, unusable = [], []
    for grant in grants:
        status = grant.status_for(period)
        (usable if status is None else unusable).append((grant, status))
    applications = []
    total = NOTHING
    for grant, _ in sorted(usable, key=lambda item: item[0].draw_order()):
        applied = min(grant.balance, due)
        due -= applied
        total += applied
        applications.append(
            CreditApplication(grant.id, grant.balance, applied, grant.balance - applied)
        )
    for grant, status in sorted(unusable, key=lambda item: item[0].draw_order()):
        applications.append(
            CreditApplication(grant.id, grant.balance, NOTHING, grant.balance, status)
        )
    return CreditResult(tuple(applications), total, due)
