"""Reading a price book from TOML, strictly: every mistake is one clear InvalidInput.

Money and percentages must be TOML strings (``price = "0.00000025"``): a TOML float is a
binary approximation, and refusing it is the only way to be sure none slipped in. Unknown
keys are refused too, so a typo (``upto``) cannot silently drop a tier boundary.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..timeutil import Period, parse_date
from .book import PriceBook
from .charges import (
    ALL_MODELS,
    CHARGE_METRICS,
    Discount,
    PackageCharge,
    Plan,
    Tier,
    TieredCharge,
    TokenCharge,
    TokenPrices,
    UnitCharge,
)
from .tomlvalues import _check_keys, _count, _decimal_string, _text, _where
from .usagetypes import VARIANT_LABELS, check_variants

_TOP_KEYS = {
    "currency",
    "default_plan",
    "list_prices_date",
    "list_prices_region",
    "list_prices_source",
    "models",
    "costs",
    "plans",
}
_PRICE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
_CHARGE_TYPES = ("per_unit", "per_request", "per_token", "graduated", "volume", "package")


def _token_prices(table: dict, source: str, path: str, extra: set[str]) -> TokenPrices:
    _check_keys(table, set(_PRICE_KEYS) | extra, source, path)
    return TokenPrices(
        *(
            _decimal_string(table[k], source, f"{path}.{k}", "a price") if k in table else None
            for k in _PRICE_KEYS
        ),
        variants=_variants(table.get("variants"), source, path) if "variants" in extra else (),
    )


def _variants(raw: Any, source: str, path: str) -> tuple:
    """``variants.<usage type> = {input = ..., ...}``: the prices of a usage type AWS bills
    apart (core/pricing/usagetypes.py names them)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise InvalidInput(f"{_where(source, path)}.variants: expected a table")
    unknown = check_variants(raw)
    if unknown:
        known = ", ".join(sorted(VARIANT_LABELS))
        raise InvalidInput(
            f"{_where(source, path)}.variants: unknown usage type {unknown[0]!r} (one of {known})"
        )
    return tuple(
        (name, _token_prices(table, source, f"{path}.variants.{name}", set()))
        for name, table in sorted(raw.items())
    )


def _versions(value: Any, source: str, path: str) -> list[dict]:
    """A table is one version in force from the beginning; an array lists dated versions."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    raise InvalidInput(f"{_where(source, path)}: expected a table or an array of tables")


def _sorted_by_start(items: list, source: str, path: str, label) -> list:
    """Versions sorted by their start; at most one without a start; no duplicate starts."""
    starts = [start for start, *_ in items]
    if starts.count(None) > 1:
        raise InvalidInput(f"{_where(source, path)}: only one version may omit 'from'")
    dated = [s for s in starts if s is not None]
    if len(set(dated)) != len(dated):
        raise InvalidInput(f"{_where(source, path)}: two versions start on the same 'from'")
    items.sort(key=lambda item: (item[0] is not None, item[0] or label))
    return items


def _parse_period(value: Any, source: str, path: str) -> Period:
    if not isinstance(value, str):
        raise InvalidInput(f'{_where(source, path)}: expected a period string "YYYY-MM"')
    try:
        return Period.parse(value)
    except InvalidInput as err:
        raise InvalidInput(f"{_where(source, path)}: {err.message}") from None


def _parse_day(value: Any, source: str, path: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return parse_date(value, "date")
    except InvalidInput as err:
        raise InvalidInput(f"{_where(source, path)}: {err.message}") from None


def _parse_models(raw: Any, source: str) -> dict:
    _check_keys(raw, set(raw) if isinstance(raw, dict) else set(), source, "models")
    models = {}
    for model, value in raw.items():
        path = f"models.{model!r}"
        items = []
        for i, version in enumerate(_versions(value, source, path)):
            vpath = path if isinstance(value, dict) else f"{path}[{i}]"
            prices = _token_prices(version, source, vpath, {"name", "from", "variants"})
            start = (
                _parse_period(version["from"], source, f"{vpath}.from")
                if "from" in version
                else None
            )
            name = _text(version["name"], source, f"{vpath}.name") if "name" in version else model
            items.append((start, prices, name))
        models[model] = tuple(_sorted_by_start(items, source, path, Period(1, 1)))
    return models


def _parse_costs(raw: Any, source: str) -> dict:
    _check_keys(raw, set(raw) if isinstance(raw, dict) else set(), source, "costs")
    costs = {}
    for model, value in raw.items():
        path = f"costs.{model!r}"
        items = []
        for i, version in enumerate(_versions(value, source, path)):
            vpath = path if isinstance(value, dict) else f"{path}[{i}]"
            prices = _token_prices(version, source, vpath, {"from", "variants"})
            start = (
                _parse_day(version["from"], source, f"{vpath}.from") if "from" in version else None
            )
            items.append((start, prices))
        costs[model] = tuple(_sorted_by_start(items, source, path, date.min))
    return costs


def _parse_tiers(raw: Any, source: str, path: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{_where(source, path)}: expected a non-empty array of tiers")
    tiers = []
    previous = 0
    for i, item in enumerate(raw):
        tpath = f"{path}[{i}]"
        _check_keys(item, {"up_to", "price", "flat_fee"}, source, tpath)
        if "price" not in item:
            raise InvalidInput(f"{_where(source, tpath)}: a tier needs a price")
        last = i == len(raw) - 1
        up_to = None
        if "up_to" in item:
            if last:
                raise InvalidInput(
                    f"{_where(source, tpath)}: the last tier is unbounded; remove its up_to"
                )
            up_to = _count(item["up_to"], source, f"{tpath}.up_to", minimum=1)
            if up_to <= previous:
                raise InvalidInput(
                    f"{_where(source, tpath)}: up_to {up_to} is not above the previous "
                    f"tier's {previous}; tiers must increase"
                )
            previous = up_to
        elif not last:
            raise InvalidInput(f"{_where(source, tpath)}: every tier but the last needs up_to")
        price = _decimal_string(item["price"], source, f"{tpath}.price", "a price")
        fee = item.get("flat_fee")
        flat = (
            _decimal_string(fee, source, f"{tpath}.flat_fee", "a price")
            if fee is not None
            else Decimal(0)
        )
        tiers.append(Tier(up_to, price, flat))
    return tuple(tiers)


def _metric(item: dict, source: str, path: str, default: str | None) -> str:
    metric = item.get("metric", default)
    if metric not in CHARGE_METRICS:
        raise InvalidInput(
            f"{_where(source, path)}.metric: {metric!r} is not one of {', '.join(CHARGE_METRICS)}"
        )
    return metric


def _parse_charge(item: Any, source: str, path: str, index: int):
    if not isinstance(item, dict) or "type" not in item:
        raise InvalidInput(f"{_where(source, path)}: a charge needs a type")
    kind = item["type"]
    if kind not in _CHARGE_TYPES:
        raise InvalidInput(
            f"{_where(source, path)}.type: unknown charge type {kind!r} "
            f"(one of {', '.join(_CHARGE_TYPES)})"
        )
    common = {"type", "name"}
    name = _text(item["name"], source, f"{path}.name") if "name" in item else f"{kind}-{index}"
    if kind in ("per_unit", "per_request"):
        _check_keys(item, common | {"metric", "model", "price", "included"}, source, path)
        if kind == "per_request" and item.get("metric", "requests") != "requests":
            raise InvalidInput(f"{_where(source, path)}: per_request prices requests only")
        metric = _metric(item, source, path, "requests")
        if "price" not in item:
            raise InvalidInput(f"{_where(source, path)}: {kind} needs a price")
        return UnitCharge(
            name=name,
            metric=metric,
            model=_text(item.get("model", ALL_MODELS), source, f"{path}.model"),
            price=_decimal_string(item["price"], source, f"{path}.price", "a price"),
            included=_count(item.get("included", 0), source, f"{path}.included"),
        )
    if kind == "per_token":
        _check_keys(item, common | {"models", "markup", "prices"}, source, path)
        models = item.get("models", ALL_MODELS)
        if models == ALL_MODELS:
            model_list = None
        elif isinstance(models, list) and models and all(isinstance(m, str) for m in models):
            model_list = tuple(models)
        else:
            raise InvalidInput(
                f'{_where(source, path)}.models: expected "*" or an array of model ids'
            )
        markup = (
            _decimal_string(item["markup"], source, f"{path}.markup", "a percentage")
            if "markup" in item
            else Decimal(0)
        )
        own = item.get("prices", {})
        _check_keys(own, set(own) if isinstance(own, dict) else set(), source, f"{path}.prices")
        prices = {
            model: _token_prices(p, source, f"{path}.prices.{model!r}", set())
            for model, p in own.items()
        }
        return TokenCharge(name=name, models=model_list, markup=markup, prices=prices)
    if kind in ("graduated", "volume"):
        _check_keys(item, common | {"metric", "model", "tiers", "included"}, source, path)
        return TieredCharge(
            name=name,
            mode=kind,
            metric=_metric(item, source, path, None),
            model=_text(item.get("model", ALL_MODELS), source, f"{path}.model"),
            tiers=_parse_tiers(item.get("tiers"), source, f"{path}.tiers"),
            included=_count(item.get("included", 0), source, f"{path}.included"),
        )
    # package
    _check_keys(item, common | {"metric", "model", "size", "price", "included"}, source, path)
    for key in ("size", "price"):
        if key not in item:
            raise InvalidInput(f"{_where(source, path)}: package needs {key}")
    return PackageCharge(
        name=name,
        metric=_metric(item, source, path, None),
        model=_text(item.get("model", ALL_MODELS), source, f"{path}.model"),
        size=_count(item["size"], source, f"{path}.size", minimum=1),
        price=_decimal_string(item["price"], source, f"{path}.price", "a price"),
        included=_count(item.get("included", 0), source, f"{path}.included"),
    )


def parse_discount(item: Any, source: str, path: str) -> Discount:
    """A discount table: ``{type = "fixed", amount = "10.00"}`` or ``{type = "percent",
    percent = "10"}``, with an optional name. Shared with customer overrides."""
    if not isinstance(item, dict):
        raise InvalidInput(f"{_where(source, path)}: expected a table")
    kind = item.get("type")
    if kind == "fixed":
        _check_keys(item, {"type", "amount", "name"}, source, path)
        value = _decimal_string(item.get("amount"), source, f"{path}.amount", "money")
    elif kind == "percent":
        _check_keys(item, {"type", "percent", "name"}, source, path)
        value = _decimal_string(item.get("percent"), source, f"{path}.percent", "a percentage")
        if value > 100:
            raise InvalidInput(f"{_where(source, path)}.percent: {value} is above 100")
    else:
        raise InvalidInput(
            f'{_where(source, path)}.type: a discount is "fixed" or "percent", got {kind!r}'
        )
    name = _text(item["name"], source, f"{path}.name") if "name" in item else ""
    return Discount(kind, value, name or (f"{value}% off" if kind == "percent" else "discount"))


def _parse_plan(name: str, version: dict, source: str, path: str) -> Plan:
    allowed = {"description", "base_fee", "minimum", "charges", "discounts", "from",
               "lines_per_key"}  # fmt: skip
    _check_keys(version, allowed, source, path)
    per_key = version.get("lines_per_key", False)
    if not isinstance(per_key, bool):
        raise InvalidInput(f"{_where(source, path)}.lines_per_key: expected true or false")
    charges_raw = version.get("charges", [])
    discounts_raw = version.get("discounts", [])
    for key, raw in (("charges", charges_raw), ("discounts", discounts_raw)):
        if not isinstance(raw, list):
            raise InvalidInput(f"{_where(source, path)}.{key}: expected an array of tables")
    return Plan(
        name=name,
        description=str(version.get("description", "")),
        base_fee=(
            _decimal_string(version["base_fee"], source, f"{path}.base_fee", "money")
            if "base_fee" in version
            else None
        ),
        minimum=(
            _decimal_string(version["minimum"], source, f"{path}.minimum", "money")
            if "minimum" in version
            else None
        ),
        charges=tuple(
            _parse_charge(c, source, f"{path}.charges[{i}]", i + 1)
            for i, c in enumerate(charges_raw)
        ),
        discounts=tuple(
            parse_discount(d, source, f"{path}.discounts[{i}]") for i, d in enumerate(discounts_raw)
        ),
        from_period=(
            _parse_period(version["from"], source, f"{path}.from") if "from" in version else None
        ),
        lines_per_key=per_key,
    )


def _parse_plans(raw: Any, source: str) -> dict:
    _check_keys(raw, set(raw) if isinstance(raw, dict) else set(), source, "plans")
    plans = {}
    for name, value in raw.items():
        path = f"plans.{name}"
        versions = [
            _parse_plan(name, v, source, path if isinstance(value, dict) else f"{path}[{i}]")
            for i, v in enumerate(_versions(value, source, path))
        ]
        items = _sorted_by_start([(p.from_period, p) for p in versions], source, path, Period(1, 1))
        plans[name] = tuple(p for _, p in items)
    return plans


def _parse_document(data: dict, source: str) -> dict:
    _check_keys(data, _TOP_KEYS, source, "")
    parsed: dict[str, Any] = {}
    if "currency" in data:
        currency = _text(data["currency"], source, "currency").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidInput(f"{source}: currency {currency!r} is not a 3-letter code")
        parsed["currency"] = currency
    for key in ("default_plan", "list_prices_date", "list_prices_region", "list_prices_source"):
        if key in data:
            parsed[key] = _text(str(data[key]), source, key)
    parsed["models"] = _parse_models(data.get("models", {}), source)
    parsed["costs"] = _parse_costs(data.get("costs", {}), source)
    parsed["plans"] = _parse_plans(data.get("plans", {}), source)
    return parsed


def _load_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidInput(f"{source}: not valid TOML: {err}") from None


_SHIPPED: dict | None = None


def _shipped() -> dict:
    global _SHIPPED
    if _SHIPPED is None:
        data = resources.files("bedrock_billing").joinpath("data", "default_prices.toml")
        text = data.read_text(encoding="utf-8")
        _SHIPPED = _parse_document(_load_toml(text, "default_prices.toml"), "default_prices.toml")
    return _SHIPPED


def _build(parsed: dict, source: str) -> PriceBook:
    shipped = _shipped()
    currency = parsed.get("currency", shipped["currency"])
    # The shipped list prices are in USD: a book in another currency brings its own.
    models = dict(shipped["models"]) if currency == shipped["currency"] else {}
    models.update(parsed["models"])
    plans = dict(shipped["plans"])
    plans.update(parsed["plans"])
    default_plan = parsed.get("default_plan", shipped["default_plan"])
    if default_plan not in plans:
        raise InvalidInput(
            f"{source}: default_plan {default_plan!r} is not a plan in the book "
            f"({', '.join(sorted(plans))})"
        )
    meta = {
        key: parsed.get(key, shipped.get(key) if currency == shipped["currency"] else None)
        for key in ("list_prices_date", "list_prices_region", "list_prices_source")
    }
    return PriceBook(
        currency=currency,
        default_plan=default_plan,
        models=models,
        costs=parsed["costs"],
        plans=plans,
        **meta,
    )


def parse_price_book(text: str, source: str = "price book") -> PriceBook:
    """A price book from TOML text, laid over the shipped list prices and plan."""
    return _build(_parse_document(_load_toml(text, source), source), source)


def load_price_book(path: str | Path | None = None) -> PriceBook:
    """The price book in ``path``; with no path, the shipped default book."""
    if path is None:
        return default_price_book()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"price book {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"price book {path} cannot be read: {err}") from None
    return parse_price_book(text, str(path))


def default_price_book() -> PriceBook:
    """The shipped book: AWS list prices and the ``list`` plan (per token at list price)."""
    return _build({"models": {}, "costs": {}, "plans": {}}, "default_prices.toml")
