"""prices export: the per-token prices the proxy's budget limit uses."""

from bedrock_billing.core.pricing import CustomerOverrides, default_price_book, export_prices
from tests.pricing_helpers import HAIKU, NOVA_PRO, book


def test_list_plan_exports_list_prices_for_every_known_model():
    out = export_prices(default_price_book(), "2025-06")
    assert out["currency"] == "USD"
    assert out["models"][HAIKU] == {"input": "0.00000025", "output": "0.00000125"}
    assert out["models"][NOVA_PRO]["cache_read"] == "0.0000002"
    assert len(out["models"]) == len(default_price_book().known_models())


def test_markup_own_prices_overrides_and_fallback_to_list_price():
    b = book(
        f"""
[plans.p]
[[plans.p.charges]]
type = "per_token"
models = ["{HAIKU}", "custom.model"]
markup = "20"
prices = {{ "custom.model" = {{ input = "0.00001" }} }}
[plans.r]
charges = [{{type = "per_request", price = "0.01"}}]
"""
    )
    out = export_prices(b, "2025-06", "p")["models"]
    assert out[HAIKU] == {"input": "0.0000003", "output": "0.0000015"}
    assert out["custom.model"] == {"input": "0.00001"}
    assert out[NOVA_PRO]["input"] == "0.0000008"  # not in the charge: list price
    assert export_prices(b, "2025-06", "r")["models"][HAIKU]["input"] == "0.00000025"
    overrides = CustomerOverrides.from_dict({"prices": {"*": {"output": "0.00002"}}})
    assert export_prices(b, "2025-06", "p", overrides)["models"][HAIKU]["output"] == "0.00002"


def test_the_proxys_shipped_prices_are_the_export_of_the_shipped_book():
    """The proxy's default budget prices and the invoices' default list prices are one
    table: data/proxy_prices.json is `prices export` of data/default_prices.toml."""
    import json
    from importlib import resources

    from bedrock_billing.core.pricing import default_price_book, export_prices

    shipped = json.loads(
        resources.files("bedrock_billing").joinpath("data", "proxy_prices.json").read_text()
    )
    exported = export_prices(default_price_book(), "2026-11")
    assert shipped["models"] == exported["models"]
    assert shipped["currency"] == exported["currency"]
