"""``prices export``: the per-token prices the proxy's budget limit estimates spend with.

Shape: ``{"currency": "USD", "models": {"<foundation model id>": {"input": "<per token>",
"output": ..., "cache_read": ..., "cache_write": ...}}}``, decimal strings. Each price is
the customer's: their override, else the first charge of their plan that prices that
token counter per unit (per_token, or per_unit on a token metric), else the list price.
A key is left out when none of these has a price for it.
"""

from __future__ import annotations

from decimal import localcontext

from ..money import PRICING_CONTEXT, format_decimal
from ..timeutil import Period
from ..usage import TOKEN_METRICS
from .book import PriceBook
from .charges import ALL_MODELS, TOKEN_PRICE_KEYS, TokenCharge, UnitCharge
from .overrides import CustomerOverrides
from .rating import expand, token_unit_price


def export_prices(
    book: PriceBook,
    period: Period | str,
    plan: str | None = None,
    overrides: CustomerOverrides | None = None,
) -> dict:
    period = Period.parse(period) if isinstance(period, str) else period
    overrides = overrides or CustomerOverrides()
    with localcontext(PRICING_CONTEXT):
        version = book.plan(plan, period)
        models = set(book.known_models())
        for charge in version.charges:
            if isinstance(charge, TokenCharge):
                models.update(charge.models or ())
                models.update(charge.prices)
            elif charge.model != ALL_MODELS:
                models.add(charge.model)
        models.update(m for m, _ in overrides.prices if m != ALL_MODELS)

        def list_price(model):
            return book.list_price(model, period)

        out: dict[str, dict[str, str]] = {}
        for model in sorted(models):
            prices = {}
            for metric in TOKEN_METRICS:
                price = overrides.price_for(model, metric)
                for charge in version.charges:
                    if price is not None:
                        break
                    if isinstance(charge, TokenCharge):
                        if charge.models is None or model in charge.models:
                            price = token_unit_price(charge, model, metric, overrides, list_price)
                    elif (
                        isinstance(charge, UnitCharge)
                        and charge.model in (ALL_MODELS, model)
                        and metric in expand(charge.metric)
                    ):  # the marginal price, past any included units: budgets err high
                        price = charge.price
                if price is None:
                    listed = list_price(model)
                    price = None if listed is None else listed.for_metric(metric)
                if price is not None:
                    prices[TOKEN_PRICE_KEYS[metric]] = format_decimal(price)
            if prices:
                out[model] = prices
    return {"currency": book.currency, "models": out}
