"""The Lambda proxy: ``bedrock_billing.proxy.handler.lambda_handler`` is the entry point.

Modules: ``events`` (Lambda events and responses), ``auth`` (tokens, cached lookups),
``meter`` (atomic admission and usage counters), ``bedrock`` (the call and its errors),
``usage`` (token counts from headers, bodies and streams), ``prices`` (budget metering),
``logline`` (the per-request log line), ``config`` (environment), ``handler`` (the flow).
Nothing here imports Typer, Rich, pyathena, DuckDB, moto or the CLI.
"""
