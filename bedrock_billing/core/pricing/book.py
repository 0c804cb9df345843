"""The price book: list prices, AWS costs and named plans, with the dates they apply from.

Customer prices (plans, list prices) change only at the start of a period, because tiers
are chosen on the period's total; AWS's cost to the operator may change on any day, so
cost is looked up per day of usage. Loading and validation live in ``loader.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from ..errors import InvalidInput
from ..timeutil import Period
from .charges import ALL_MODELS, Plan, TokenPrices

SHIPPED_PLAN = "list"  # the shipped plan: every model per token at list price

__all__ = ["ALL_MODELS", "SHIPPED_PLAN", "PlanAssignment", "PriceBook", "plan_in_force"]


@dataclass(frozen=True)
class PriceBook:
    currency: str
    default_plan: str
    # model id -> versions (from_period or None, prices, display name), oldest first
    models: Mapping[str, tuple[tuple[Period | None, TokenPrices, str], ...]]
    # model id -> AWS cost versions (from_day or None, prices), oldest first
    costs: Mapping[str, tuple[tuple[date | None, TokenPrices], ...]]
    # plan name -> versions, oldest first
    plans: Mapping[str, tuple[Plan, ...]]
    list_prices_date: str | None = None
    list_prices_region: str | None = None
    list_prices_source: str | None = None
    # (model, day) -> cost price: invoices look up every day of every model, books are
    # immutable, so the answer never changes.
    _cost_cache: dict = field(default_factory=dict, compare=False, repr=False)

    def plan_names(self) -> list[str]:
        return sorted(self.plans)

    def has_plan(self, name: str) -> bool:
        return name in self.plans

    def plan(self, name: str | None, period: Period) -> Plan:
        """The version of plan ``name`` (the default plan when None) in force for ``period``."""
        name = name or self.default_plan
        versions = self.plans.get(name)
        if versions is None:
            known = ", ".join(self.plan_names())
            raise InvalidInput(f"unknown plan {name!r}; the price book has: {known}")
        chosen = _in_force(versions, period, key=lambda plan: plan.from_period)
        if chosen is None:
            raise InvalidInput(f"plan {name!r} has no version in force for {period}")
        return chosen

    def list_price(self, model: str, period: Period) -> TokenPrices | None:
        """The model's list price for a period (None when the book does not know the model)."""
        versions = self.models.get(model)
        if not versions:
            return None
        chosen = _in_force(versions, period, key=lambda v: v[0])
        return None if chosen is None else chosen[1]

    def model_name(self, model: str) -> str:
        versions = self.models.get(model)
        return versions[-1][2] if versions else model

    def cost_price(self, model: str, day: date) -> TokenPrices | None:
        """What AWS charges the operator per token on ``day``: the cost entry in force that
        day, else the list price (what AWS charges when you have no private pricing)."""
        key = (model, day)
        if key in self._cost_cache:
            return self._cost_cache[key]
        price = self._cost_price(model, day)
        self._cost_cache[key] = price
        return price

    def _cost_price(self, model: str, day: date) -> TokenPrices | None:
        versions = self.costs.get(model)
        if versions:
            chosen = _in_force(versions, day, key=lambda v: v[0])
            if chosen is not None:
                return chosen[1]
        return self.list_price(model, Period.of(day))

    def known_models(self) -> list[str]:
        return sorted(self.models)


def _in_force(versions, when, key):
    """The last version whose start is None or <= when (versions are sorted by start)."""
    chosen = None
    for version in versions:
        start = key(version)
        if start is None or start <= when:
            chosen = version
        else:
            break
    return chosen


@dataclass(frozen=True)
class PlanAssignment:
    """A customer's plan from a period on; a change takes effect from the next period."""

    plan: str
    from_period: Period

    @classmethod
    def from_dict(cls, item: Mapping) -> PlanAssignment:
        try:
            return cls(str(item["plan"]), Period.parse(str(item["from_period"])))
        except KeyError as missing:
            raise InvalidInput(f"plan history entry needs {missing.args[0]!r}") from None


def plan_in_force(history: Iterable[PlanAssignment | Mapping], period: Period | str) -> str | None:
    """The plan name in force for ``period``: the latest assignment from or before it.

    None when the history is empty or starts after the period (the caller then uses the
    price book's default plan). Two assignments for one period: the later in the list wins.
    """
    period = Period.parse(period) if isinstance(period, str) else period
    best: PlanAssignment | None = None
    for entry in history:
        item = entry if isinstance(entry, PlanAssignment) else PlanAssignment.from_dict(entry)
        if item.from_period <= period and (best is None or item.from_period >= best.from_period):
            best = item
    return None if best is None else best.plan
