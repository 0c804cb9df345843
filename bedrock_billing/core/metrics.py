"""The names of the proxy's per-request CloudWatch metrics (EMF), shared by the proxy that
emits them and the deploy's dashboard and alarms that read them. Pure."""

from __future__ import annotations

# Per-request metrics (docs/metrics.md): by model and in total, and by customer when the
# operator turns it on (BEDROCK_BILLING_CUSTOMER_METRICS=on): a few metrics per customer.
REQUEST_METRICS = (
    ("Requests", "Count"),  # admitted and answered by Bedrock
    ("Errors", "Count"),  # admitted, then failed (Bedrock or the proxy)
    ("Refusals", "Count"),  # refused at a limit, a model check, a bad token or request
    ("Throttles", "Count"),  # refusals with a 429 (a limit that resets, or Bedrock's)
    ("Latency", "Milliseconds"),  # the proxy's whole request
    ("InputTokens", "Count"),
    ("OutputTokens", "Count"),
    ("Tokens", "Count"),
)
CUSTOMER_METRICS = ("Requests", "Errors", "Tokens")
DIMENSION_MODEL = "Model"
DIMENSION_CUSTOMER = "CustomerId"
