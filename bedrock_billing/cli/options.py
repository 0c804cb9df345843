"""Options more than one command takes, declared once (``Annotated`` aliases), so their
names and help cannot drift apart between commands."""

from __future__ import annotations

from typing import Annotated

import typer

CUSTOMER_HELP = "The customer's id, or a unique prefix of it (as tables show it)."

CustomerId = Annotated[str, typer.Option("--customer-id", help=CUSTOMER_HELP, show_default=False)]
"""Required: a command about one customer."""

OneCustomer = Annotated[
    str | None, typer.Option("--customer-id", help="One customer (id or unique prefix).")
]
"""Optional: one customer instead of everyone."""

AllCustomers = Annotated[bool, typer.Option("--all", help="Every customer.")]
Period = Annotated[str | None, typer.Option("--period", help="A month, YYYY-MM.")]
StartDate = Annotated[
    str | None,
    typer.Option("--start-date", help="YYYY-MM-DD, inclusive (default: 1st of month)."),
]
EndDate = Annotated[
    str | None, typer.Option("--end-date", help="YYYY-MM-DD, inclusive (default: today).")
]
PriceBook = Annotated[
    str | None,
    typer.Option("--price-book", help="Price book TOML file (default: the config's)."),
]
Plan = Annotated[str | None, typer.Option("--plan", help="A plan of the price book.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking.")]
ExpiresIn = Annotated[
    str | None, typer.Option("--expires-in", help="Token lifetime, e.g. 90d.")
]
DailyLimit = Annotated[str | None, typer.Option("--daily-limit", help="Requests per UTC day.")]
Token = Annotated[
    str | None,
    typer.Option("--token", help="Use this token (>=128 bits of entropy), not a generated one."),
]
Out = Annotated[str | None, typer.Option("--out", help="Write to this path instead of stdout.")]
