"""Pricing a period's usage totals with a plan's charges: one or more lines per charge.

Each line keeps its exact amount and its amount rounded half-up to the cent; the invoice
sums the rounded amounts. ``covered`` records which (model, metric) usage some charge
priced, so what no charge prices can be listed as unpriced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from ..errors import InvalidInput
from ..money import PRICING_CONTEXT, ZERO, format_decimal, format_money, round_half_up
from ..usage import METRICS, TOKEN_METRICS
from .charges import (
    ALL_MODELS,
    PackageCharge,
    Plan,
    TieredCharge,
    TierPart,
    TokenCharge,
    TokenPrices,
    UnitCharge,
    package_blocks,
)
from .overrides import CustomerOverrides

_INDEX = {metric: i for i, metric in enumerate(METRICS)}
_mul = PRICING_CONTEXT.multiply

BASE_FEE = "base_fee"
USAGE = "usage"
INCLUDED = "included"
TRUE_UP = "true_up"


@dataclass(frozen=True)
class Line:
    kind: str  # base_fee | usage | included | true_up
    charge: str  # the charge's name (base_fee / minimum for plan-level lines)
    charge_type: str | None  # per_unit, per_token, graduated, volume, package; None otherwise
    description: str
    model: str | None  # a model id, "*" for all models, None for plan-level lines
    metric: str | None
    quantity: int
    unit_price: Decimal | None
    exact_amount: Decimal
    amount: Decimal  # exact_amount rounded half-up to the cent
    tiers: tuple[TierPart, ...] = ()
    blocks: int | None = None  # package charges: started blocks billed

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "charge": self.charge,
            "charge_type": self.charge_type,
            "description": self.description,
            "model": self.model,
            "metric": self.metric,
            "quantity": self.quantity,
            "unit_price": None if self.unit_price is None else format_decimal(self.unit_price),
            "exact_amount": format_decimal(self.exact_amount),
            "amount": format_money(self.amount),
        }
        if self.tiers:
            out["tiers"] = [
                {
                    "tier": p.tier,
                    "first_unit": p.first_unit,
                    "last_unit": p.last_unit,
                    "quantity": p.quantity,
                    "unit_price": format_decimal(p.unit_price),
                    "flat_fee": format_decimal(p.flat_fee),
                    "amount": format_decimal(p.amount),
                }
                for p in self.tiers
            ]
        if self.blocks is not None:
            out["blocks"] = self.blocks
        return out


_AUTO_NAME = re.compile(r"^(per_request|per_unit|per_token|graduated|volume|package)-\d+$")


def _named(charge) -> str:
    """``"<name>: "`` for a charge the price book named; nothing for the loader's own
    identifiers (``per_unit-1``), which mean nothing to the customer reading the invoice."""
    return "" if _AUTO_NAME.match(charge.name) else f"{charge.name}: "


def make_line(
    kind, charge, charge_type, description, model, metric, quantity, unit_price, exact, **extra
) -> Line:
    return Line(
        kind,
        charge,
        charge_type,
        description[:1].upper() + description[1:],  # a sentence on the customer's invoice
        model,
        metric,
        quantity,
        unit_price,
        exact,
        round_half_up(exact),
        **extra,
    )


def expand(metric: str) -> tuple[str, ...]:
    """The row counters a charge metric covers: ``tokens`` is all four token counts."""
    return TOKEN_METRICS if metric == "tokens" else (metric,)


def quantity(totals: Mapping[str, list[int]], model: str, metric: str) -> int:
    indexes = [_INDEX[m] for m in expand(metric)]
    counts = totals.values() if model == ALL_MODELS else [totals.get(model, [0] * 5)]
    return sum(c[i] for c in counts for i in indexes)


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def _scope(model: str, names: Callable[[str], str]) -> str:
    return "all models" if model == ALL_MODELS else names(model)


def token_unit_price(
    charge: TokenCharge,
    model: str,
    metric: str,
    overrides: CustomerOverrides,
    list_price: Callable[[str], TokenPrices | None],
) -> Decimal | None:
    """A per-token charge's price for one model and token counter, None if it has none:
    the customer's override, else the charge's own price, else list x (1 + markup%)."""
    price = overrides.price_for(model, metric)
    if price is not None:
        return price
    own = charge.prices.get(model)
    if own is not None and own.for_metric(metric) is not None:
        return own.for_metric(metric)
    listed = list_price(model)
    if listed is None or listed.for_metric(metric) is None:
        return None
    markup = overrides.markup if overrides.markup is not None else charge.markup
    return listed.marked_up(markup).for_metric(metric)


class Rater:
    """Prices one period for one plan version; collects lines and what they covered."""

    def __init__(
        self,
        plan: Plan,
        totals: Mapping[str, list[int]],
        overrides: CustomerOverrides,
        list_price: Callable[[str], TokenPrices | None],
        model_name: Callable[[str], str],
    ):
        self.plan = plan
        self.totals = totals
        self.overrides = overrides
        self.list_price = list_price
        self.model_name = model_name
        self.lines: list[Line] = []
        self.covered: set[tuple[str, str]] = set()

    def cover(self, model: str, metric: str) -> None:
        models = self.totals if model == ALL_MODELS else (model,)
        for m in models:
            for base in expand(metric):
                self.covered.add((m, base))

    def rate(self) -> list[Line]:
        self._check_overrides()
        base_fee = (
            self.overrides.base_fee if self.overrides.base_fee is not None else (self.plan.base_fee)
        )
        if base_fee is not None:
            self.lines.append(
                make_line(
                    BASE_FEE,
                    BASE_FEE,
                    None,
                    f"Base fee ({self.plan.name})",
                    None,
                    None,
                    1,
                    base_fee,
                    base_fee,
                )
            )
        for charge in self.plan.charges:
            if isinstance(charge, TokenCharge):
                self._token(charge)
            elif isinstance(charge, UnitCharge):
                self._unit(charge)
            else:
                self._totalled(charge)
        self._leftover_overrides()
        return self.lines

    def _check_overrides(self) -> None:
        """An override may not touch usage a tiered or package charge prices on its total,
        nor a single model inside a per-unit charge across all models (it would split it)."""
        for model, metric in self.overrides.prices:
            for charge in self.plan.charges:
                if isinstance(charge, TokenCharge):
                    continue
                models_meet = ALL_MODELS in (model, charge.model) or model == charge.model
                metrics_meet = set(expand(metric)) & set(expand(charge.metric))
                if not (models_meet and metrics_meet):
                    continue
                if isinstance(charge, UnitCharge) and (
                    model == charge.model or (model == ALL_MODELS and metric == charge.metric)
                ):
                    continue
                raise InvalidInput(
                    f"price override for {model} {metric} conflicts with charge "
                    f"{charge.name!r} ({charge.type} on {charge.model} {charge.metric}); "
                    "overrides replace per-unit and per-token prices only"
                )

    def _included(self, charge, used: int) -> int:
        if charge.included <= 0:
            return used
        self.lines.append(
            make_line(
                INCLUDED,
                charge.name,
                charge.type,
                f"{_named(charge)}included {_label(charge.metric)}, "
                f"{_scope(charge.model, self.model_name)} ({charge.included} included)",
                charge.model,
                charge.metric,
                min(used, charge.included),
                ZERO,
                ZERO,
            )
        )
        return max(0, used - charge.included)

    def _unit(self, charge: UnitCharge) -> None:
        override = self.overrides.prices.get((charge.model, charge.metric))
        if override is None:
            override = self.overrides.prices.get((ALL_MODELS, charge.metric))
        price = charge.price if override is None else override
        billable = self._included(charge, quantity(self.totals, charge.model, charge.metric))
        description = f"{_named(charge)}{_label(charge.metric)}, " + _scope(
            charge.model, self.model_name
        )
        self.lines.append(
            make_line(
                USAGE,
                charge.name,
                charge.type,
                description,
                charge.model,
                charge.metric,
                billable,
                price,
                _mul(billable, price),
            )
        )
        self.cover(charge.model, charge.metric)

    def _totalled(self, charge: TieredCharge | PackageCharge) -> None:
        billable = self._included(charge, quantity(self.totals, charge.model, charge.metric))
        scope = _scope(charge.model, self.model_name)
        description = f"{_named(charge)}{_label(charge.metric)}, {scope}, {charge.type}"
        if isinstance(charge, TieredCharge):
            exact, parts = charge.amount(billable)
            line = make_line(
                USAGE,
                charge.name,
                charge.type,
                description,
                charge.model,
                charge.metric,
                billable,
                None,
                exact,
                tiers=parts,
            )
        else:
            blocks = package_blocks(billable, charge.size)
            line = make_line(
                USAGE,
                charge.name,
                charge.type,
                f"{description} of {charge.size}",
                charge.model,
                charge.metric,
                billable,
                charge.price,
                _mul(blocks, charge.price),
                blocks=blocks,
            )
        self.lines.append(line)
        self.cover(charge.model, charge.metric)

    def _token(self, charge: TokenCharge) -> None:
        models = charge.models if charge.models is not None else sorted(self.totals)
        before = len(self.lines)
        for model in models:
            counts = self.totals.get(model)
            if counts is None:
                continue
            for metric in TOKEN_METRICS:
                used = counts[_INDEX[metric]]
                price = token_unit_price(charge, model, metric, self.overrides, self.list_price)
                if price is None:
                    continue
                self.covered.add((model, metric))
                if used == 0:
                    continue
                self.lines.append(
                    make_line(
                        USAGE,
                        charge.name,
                        charge.type,
                        f"{self.model_name(model)}: {_label(metric)}",
                        model,
                        metric,
                        used,
                        price,
                        _mul(used, price),
                    )
                )
        if len(self.lines) == before:  # every configured charge shows, 0.00 at zero usage
            model = ALL_MODELS if charge.models is None else ",".join(charge.models)
            self.lines.append(
                make_line(
                    USAGE,
                    charge.name,
                    charge.type,
                    f"{_named(charge)}tokens, no usage",
                    model,
                    "tokens",
                    0,
                    None,
                    ZERO,
                )
            )

    def _leftover_overrides(self) -> None:
        """Overrides that price usage no charge covered get their own per-unit lines."""
        for (model, metric), price in sorted(self.overrides.prices.items()):
            models = sorted(self.totals) if model == ALL_MODELS else [model]
            for m in models:
                for base in expand(metric):
                    used = quantity(self.totals, m, base)
                    if used == 0 or (m, base) in self.covered:
                        continue
                    self.covered.add((m, base))
                    self.lines.append(
                        make_line(
                            USAGE,
                            "customer_price",
                            "per_unit",
                            f"{self.model_name(m)}: {_label(base)} (customer price)",
                            m,
                            base,
                            used,
                            price,
                            _mul(used, price),
                        )
                    )


def priced_metrics(plan: Plan, overrides: CustomerOverrides) -> set[str]:
    """Row counters the plan prices for at least some model: usage of one of them that no
    charge covered is reported as unpriced (a per-token plan does not report requests)."""
    metrics: set[str] = set()
    for charge in plan.charges:
        metrics.update(TOKEN_METRICS if isinstance(charge, TokenCharge) else expand(charge.metric))
    for _, metric in overrides.prices:
        metrics.update(expand(metric))
    return metrics


__all__ = [
    "Line",
    "Rater",
    "TRUE_UP",
    "expand",
    "make_line",
    "priced_metrics",
    "quantity",
    "token_unit_price",
]
