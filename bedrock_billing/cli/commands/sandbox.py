"""Commands that run the product locally: ``sandbox`` (until interrupted) and ``demo``."""

from __future__ import annotations

import signal
import threading

import typer

from ...core.errors import BillingError, InvalidInput
from ..app import app
from ..render import emit, emit_line, note, stdout_console

CALL_COLUMNS = [
    ("n", "#"),
    ("customer", "Customer"),
    ("model", "Model"),
    ("result", "Answer from the proxy"),
]
USAGE_COLUMNS = [
    ("customer_name", "Customer"),
    ("model", "Model"),
    ("requests", "Requests"),
    ("input_tokens", "Tokens in"),
    ("output_tokens", "Tokens out"),
    ("refused", "Refused"),
]


@app.command("sandbox")
def sandbox(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="A loopback address only."),
    port: int = typer.Option(
        8787, "--port", min=0, max=65535, help="The proxy's HTTP port (0: a free one)."
    ),
    tls_port: int = typer.Option(
        8788,
        "--tls-port",
        min=0,
        max=65535,
        help="The proxy's HTTPS port, for the AWS SDKs (0: a free one).",
    ),
) -> None:
    """Run AWS (moto), a fake Bedrock and the proxy on loopback until Ctrl-C."""
    from ...sandbox.runner import Sandbox

    settings = ctx.obj
    box = Sandbox(
        host=host,
        port=port,
        tls_port=tls_port,
        stage=settings.stage,
        table_prefix=settings.table_prefix,
        region=settings.region,
    )
    box.start()
    try:
        serve_until_stopped(lambda: _announce(box, settings))
    finally:
        box.stop()
    note("Sandbox stopped.")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_until_stopped(announce) -> None:
    """Call ``announce()``, then wait for Ctrl-C or SIGTERM (a long-running command)."""
    stop = threading.Event()
    try:
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in _STOP_SIGNALS}
        try:
            announce()
            while not stop.wait(0.5):  # a timed wait lets the signal handlers run
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    except KeyboardInterrupt:
        pass


def _announce(box, settings) -> None:
    info = box.info()
    emit_line(settings, info, lambda: _say_where(info))


def _say_where(info: dict) -> None:
    endpoint = f"--endpoint-url {info['aws_endpoint_url']} --region {info['region']}"
    stage = "" if info["stage"] == "prod" else f" --stage {info['stage']}"
    note(
        "\n".join(
            [
                f"Sandbox ready (stage {info['stage']}, region {info['region']}); Ctrl-C stops it.",
                f"  proxy       POST {info['proxy_url']}",
                f"  portal      {info['portal_url']} (customers sign in with their token)",
                f"  Bedrock API {info['bedrock_endpoint_url']} (HTTPS; CA {info['ca_bundle']})",
                f"  AWS (moto)  {info['aws_endpoint_url']}",
                f"  Bedrock     {info['bedrock_url']} (fake)",
                f"  usage log   {info['log_uri']}",
                f"  alerts      {info['alerts_topic_arn']} (SNS)",
                "In another shell (no AWS setup needed):",
                f"  bedrock-billing create --name Acme --email ops@acme.example {endpoint}{stage}",
                f"  curl -X POST {info['proxy_url']} -H 'Content-Type: application/json' \\",
                "    -H 'Authorization: Bearer <token>' -d '{\"modelId\": "
                '"anthropic.claude-3-sonnet-20240229-v1:0", "anthropic_version": '
                '"bedrock-2023-05-31", "max_tokens": 1000, "messages": [{"role": "user", '
                '"content": [{"type": "text", "text": "What is the capital of France?"}]}]}\'',
                f"  bedrock-billing usage --customer-id <id> {endpoint}{stage}",
                "Any Bedrock SDK, with the token as its API key:",
                f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={info['bedrock_endpoint_url']}",
                f"  export AWS_CA_BUNDLE={info['ca_bundle']}"
                f" NODE_EXTRA_CA_CERTS={info['ca_bundle']}",
                "  export AWS_BEARER_TOKEN_BEDROCK=<token>",
            ]
        )
    )


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Run the main job end to end in a local sandbox (a few seconds), check it, stop."""
    from ...sandbox.demo import run_demo

    settings = ctx.obj
    if settings.output == "csv":
        raise InvalidInput("demo prints a table or JSON (--output json), not CSV")
    result = run_demo(
        stage=settings.stage,
        table_prefix=settings.table_prefix,
        region=settings.region,
        notify=note,
    )
    emit(settings, result.to_dict(), table=lambda: _render(settings, result))
    for failure in result.failures:
        note(f"check failed: {failure}")
    if not result.ok:
        raise BillingError(f"demo: {len(result.failures)} of {result.checks} checks failed")
    note(f"Demo finished in {result.seconds:.1f} s: all {result.checks} checks passed.")


def _render(settings, result) -> None:
    from ...sandbox.demo import SDK_CLIENT, model_name
    from .billing import OUTCOME_COLUMNS, print_invoice

    calls = [
        {
            "n": n,
            "customer": c["customer"],
            "model": model_name(c["model"]),
            "result": f"{c['status']} "
            + ("answered" if c["status"] == 200 else str(c["code"]))
            + (" (boto3, HTTPS)" if c.get("client") == SDK_CLIENT else ""),
        }
        for n, c in enumerate(result.calls, 1)
    ]
    emit(settings, {"rows": calls}, rows_key="rows", columns=CALL_COLUMNS, title="Requests")
    names = result.customer_names()
    usage = result.usage
    rows = sorted(
        (
            {**r, "customer_name": names.get(r["customer_id"]), "model": model_name(r["model"])}
            for r in usage.csv_rows()
        ),
        key=lambda r: (r["customer_name"] or "", r["model"] or ""),
    )
    period = f"{usage.start_date}" + (
        "" if usage.start_date == usage.end_date else f" to {usage.end_date}"
    )
    agrees = "differs" if result.reconcile.differences else "agrees"
    emit(
        settings,
        {"rows": rows},
        rows_key="rows",
        columns=USAGE_COLUMNS,
        title=f"Usage {period} (from the counters; the usage log {agrees})",
    )
    stdout_console().print()
    for doc in result.invoices.invoices:
        print_invoice(doc)
    emit(
        settings,
        {"rows": result.invoices.outcomes},
        rows_key="rows",
        columns=OUTCOME_COLUMNS,
        title=f"Invoices {result.invoices.period} (drafts: the month is not over)",
    )
