"""Customers of the shared TLS sandbox (``tls_sandbox``) with usage and an issued invoice, for
the customer portal's HTTP and browser tests; and a plain HTTP client for its proxy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from bedrock_billing.core.timeutil import Period
from tests.proxy_support import HAIKU, claude_body

BOOK = str(Path(__file__).parent / "data" / "pricebook.toml")


@dataclass
class PortalCustomer:
    customer_id: str
    token: str
    invoice_id: str | None = None
    invoice_total: str | None = None


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxy the shell exports
    return session


def base_url(sandbox) -> str:
    """The stage's base URL on the sandbox's plain-HTTP proxy: ``.../{stage}``."""
    return f"{sandbox.proxy_base_url}/{sandbox.stage}"


def get(sandbox, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http().get(base_url(sandbox) + path, headers=headers, timeout=30, **kwargs)


def call_model(sandbox, token: str, text: str = "hello") -> requests.Response:
    """One model call through the first version's route (metered, logged)."""
    answer = http().post(
        sandbox.proxy_url,
        json=claude_body(text, model=HAIKU, max_tokens=20),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return answer


def make_customer(
    sandbox, *, requests_made: int = 2, invoice: bool = True, plan: str = "payg", **limits
):
    """A customer on ``plan`` (tests/data/pricebook.toml) with ``requests_made`` model calls
    this month and, if ``invoice``, this month's invoice issued (finalized early, as
    ``--force`` does)."""
    from bedrock_billing.services.customers import create_customer, update_limits
    from bedrock_billing.services.invoices import run_invoices

    settings = sandbox.settings()
    made = create_customer(
        settings, name="Portal Test", email="portal@example.com", plan=plan, price_book=BOOK
    )
    cid, token = made["customer_id"], made["token"]
    if limits:
        update_limits(settings, cid, **limits)
    for n in range(requests_made):
        assert call_model(sandbox, token, f"question {n}").status_code == 200
    customer = PortalCustomer(cid, token)
    if invoice:
        run = run_invoices(
            settings,
            period=str(Period.of(sandbox.clock())),
            customer_id=cid,
            finalize=True,
            force=True,
            price_book=BOOK,
            allow_unpriced=True,
        )
        customer.invoice_id = run.invoices[0]["invoice_number"]
        customer.invoice_total = run.invoices[0]["total"]
    return customer


def cli_usage(sandbox, customer_id: str, period: str) -> dict:
    """What ``bedrock-billing usage --output json`` reports for one customer and month."""
    from tests.cli_helpers import run_json

    return run_json(
        "usage", "--customer-id", customer_id, "--period", period,
        "--endpoint-url", sandbox.aws_endpoint_url, "--stage", sandbox.stage,
        "--region", sandbox.region,
    )  # fmt: skip
