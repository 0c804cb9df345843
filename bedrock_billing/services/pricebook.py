"""The price book in force for a command: ``--price-book``, the config's ``price_book``, or
the shipped default; with its hash, which finalized invoices record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInput
from ..core.pricing import load_price_book


@dataclass
class PriceBookRef:
    book: Any
    source: str
    sha256: str


def load_book(settings, path: str | None = None) -> PriceBookRef:
    """The price book from ``--price-book``, the config, or the shipped default; with its hash
    (stored on each finalized invoice, so a dispute can name the exact prices used)."""
    chosen = path or getattr(settings, "price_book", None)
    if chosen:
        file = Path(chosen).expanduser()
        book = load_price_book(file)
        return PriceBookRef(book, str(file), hashlib.sha256(file.read_bytes()).hexdigest())
    data = resources.files("bedrock_billing").joinpath("data", "default_prices.toml").read_bytes()
    return PriceBookRef(
        load_price_book(None), "shipped", "shipped:" + hashlib.sha256(data).hexdigest()
    )


def check_plan(settings, plan: str, price_book: str | None = None) -> None:
    """Refuse a plan the price book does not have now, not at month end in `invoice`."""
    ref = load_book(settings, price_book)
    if not ref.book.has_plan(plan):
        names = ", ".join(ref.book.plan_names())
        raise InvalidInput(
            f"unknown plan {plan!r}: the price book ({ref.source}) has {names}; "
            "pass --price-book FILE or set price_book in the config file"
        )


def read_overrides_file(path: str) -> dict[str, Any]:
    """A customer's pricing overrides from a JSON or TOML file, validated, in the stored
    shape. Money and prices are strings ("10", "0.0000002"), as in the price book."""
    import json
    import tomllib

    from ..core.pricing import CustomerOverrides

    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(
            f"{file}: not valid {file.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from None
    return CustomerOverrides.from_dict(data, str(file)).to_dict()
