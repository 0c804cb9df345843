"""The pure pricing core: price books, charge models, rating a period, credits, quotes.

No AWS and no I/O beyond reading a TOML or usage file: the ``invoice``, ``quote``,
``credits`` and ``prices export`` commands call these functions with rows they read.
docs/pricing.md is the reference for the rules implemented here.
"""

from .book import (
    ALL_MODELS,
    SHIPPED_PLAN,
    PlanAssignment,
    PriceBook,
    plan_in_force,
)
from .charges import (
    Discount,
    PackageCharge,
    Plan,
    TieredCharge,
    TokenCharge,
    TokenPrices,
    UnitCharge,
)
from .credits import CreditApplication, CreditGrant, CreditResult, apply_credits
from .export import export_prices
from .invoice import AppliedDiscount, InvoiceDraft, rate_period
from .loader import default_price_book, load_price_book, parse_price_book
from .margin import ModelMargin
from .overrides import CustomerOverrides
from .quote import (
    parse_grants_text,
    parse_usage_text,
    quote,
    read_grants_file,
    read_usage_file,
    usage_from_flags,
)
from .rating import Line

__all__ = [
    "ALL_MODELS",
    "AppliedDiscount",
    "ModelMargin",
    "SHIPPED_PLAN",
    "CreditApplication",
    "CreditGrant",
    "CreditResult",
    "CustomerOverrides",
    "Discount",
    "InvoiceDraft",
    "Line",
    "PackageCharge",
    "Plan",
    "PlanAssignment",
    "PriceBook",
    "TieredCharge",
    "TokenCharge",
    "TokenPrices",
    "UnitCharge",
    "apply_credits",
    "default_price_book",
    "export_prices",
    "load_price_book",
    "parse_grants_text",
    "parse_price_book",
    "parse_usage_text",
    "plan_in_force",
    "quote",
    "rate_period",
    "read_grants_file",
    "read_usage_file",
    "usage_from_flags",
]
