"""``bedrock-billing demo``: the main job end to end in a local sandbox, checked.

Starts a :class:`Sandbox`, creates three customers on three kinds of plan (per token with
a markup, a subscription with included requests, graduated tiers), sends real HTTP
requests through the proxy with the spec's client payload (some refused at a limit, one
with an unknown token) and one through boto3's own ``bedrock-runtime`` client over HTTPS
with the customer's token as its Bedrock API key, then reads the usage from the counters
and from the usage log (local engine), drafts the month's invoices with the demo price
book, and checks every figure it can know in advance. The CLI renders the result; this
module only computes it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from ..core.schema import DEFAULT_PREFIX, DEFAULT_STAGE
from ..core.timeutil import Clock, Period, system_clock
from ..core.tokens import generate_token
from .runner import Sandbox

SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"

_MODEL_NAMES = {SONNET: "Claude 3 Sonnet", HAIKU: "Claude 3 Haiku"}


def model_name(model_id: str | None) -> str | None:
    """A short name for the demo's tables (they must fit 80 columns)."""
    return _MODEL_NAMES.get(model_id or "", model_id)


# The body of the spec's cURL example (usage-tracking.md, "Client Integration").
SPEC_PAYLOAD: dict[str, Any] = {
    "modelId": SONNET,
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 1000,
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}
    ],
}


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    email: str
    plan: str
    limits: dict[str, Any] = field(default_factory=dict)


CUSTOMERS = (
    DemoCustomer("Acme Corp", "billing@acme.example", "starter", {"daily_request_limit": 3}),
    DemoCustomer("Globex", "ap@globex.example", "team"),
    DemoCustomer("Initech", "finance@initech.example", "scale", {"allowed_models": [HAIKU]}),
)
BAD_TOKEN = None  # a well-formed token nobody was given

# (customer name or BAD_TOKEN, model, expected status, expected error code)
TRAFFIC: tuple[tuple[str | None, str, int, str | None], ...] = (
    *(("Acme Corp", SONNET, 200, None) for _ in range(3)),
    *(("Acme Corp", SONNET, 429, "daily_request_limit_exceeded") for _ in range(2)),
    *(("Globex", SONNET, 200, None) for _ in range(4)),
    *(("Initech", HAIKU, 200, None) for _ in range(2)),
    ("Initech", SONNET, 403, "model_not_allowed"),
    (BAD_TOKEN, SONNET, 401, "invalid_token"),
)
# One call as a customer's own Bedrock code makes it: boto3, the token as the API key.
SDK_CUSTOMER, SDK_MODEL = "Initech", HAIKU
SDK_CLIENT = "boto3 bedrock-runtime over HTTPS"
TOKEN_COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
TEAM_TOTAL = Decimal("49.50")  # base fee 49.00 + (4 requests - 3 included) x 0.50


def demo_price_book() -> str:
    return str(resources.files("bedrock_billing").joinpath("data", "demo_prices.toml"))


def scale_total(tokens: int) -> Decimal:
    """The ``scale`` plan's graduated tiers, computed independently of the pricing code."""
    total = Decimal(0)
    if tokens > 100:  # tier 2 reached: its flat fee, and its units
        total += Decimal("1.00") + (min(tokens, 1000) - 100) * Decimal("0.001")
    if tokens > 1000:
        total += (tokens - 1000) * Decimal("0.0005")
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class DemoResult:
    info: dict[str, Any]
    customers: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    usage: Any  # services.usage_reports.UsageReport (from the counters)
    reconcile: Any  # services.usage_reports.ReconcileReport (counters against the log)
    invoices: Any  # services.invoices.InvoiceRun (drafts of the current month)
    failures: list[str]
    checks: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures

    def customer_names(self) -> dict[str, str]:
        return {c["customer_id"]: c["name"] for c in self.customers}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "sandbox": self.info,
            "customers": self.customers,
            "requests": self.calls,
            "usage": self.usage.to_dict() if self.usage else None,
            "reconcile": self.reconcile.to_dict() if self.reconcile else None,
            "invoices": self.invoices.to_dict() if self.invoices else None,
            "checks": {"passed": self.checks - len(self.failures), "failed": self.failures},
        }


def post_json(url: str, body: dict, token: str, timeout: float = 30) -> tuple[int, dict]:
    """POST as the spec's client does; (status, parsed JSON body)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    # The sandbox is on loopback: never through an HTTP proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"{}")


def run_demo(
    *,
    stage: str = DEFAULT_STAGE,
    table_prefix: str = DEFAULT_PREFIX,
    region: str | None = None,
    notify: Callable[[str], None] = lambda message: None,
    clock: Clock = system_clock,
) -> DemoResult:
    from ..services.customers import create_customer, update_limits

    started = time.perf_counter()
    with Sandbox(stage=stage, table_prefix=table_prefix, region=region, clock=clock) as sb:
        notify(
            f"Sandbox up: proxy {sb.proxy_url} and {sb.bedrock_endpoint_url},"
            f" AWS (moto) {sb.aws_endpoint_url}"
        )
        settings = sb.settings()
        first_day = clock().date()
        customers, tokens = [], {}
        for spec in CUSTOMERS:
            made = create_customer(
                settings,
                name=spec.name,
                email=spec.email,
                plan=spec.plan,
                price_book=demo_price_book(),
            )
            if spec.limits:
                made = {**made, **update_limits(settings, made["customer_id"], **spec.limits)}
            tokens[spec.name] = made.pop("token")  # kept in memory only, never shown
            customers.append(made)
        notify(f"Created {len(customers)} customers on plans starter, team and scale")
        calls = []
        for name, model, expected, code in TRAFFIC:
            token = tokens[name] if name else generate_token()
            status, body = post_json(sb.proxy_url, {**SPEC_PAYLOAD, "modelId": model}, token)
            error = body.get("error") or {}
            calls.append(
                {
                    "customer": name or "(unknown token)",
                    "model": model,
                    "status": status,
                    "code": error.get("code"),
                    "expected_status": expected,
                    "expected_code": code,
                    "answer": _answer_text(body) if status == 200 else None,
                    "client": "HTTP (spec payload)",
                }
            )
        calls.append(sdk_call(sb, tokens[SDK_CUSTOMER], SDK_CUSTOMER, SDK_MODEL))
        notify(f"Sent {len(calls)} requests through the proxy, the last with {SDK_CLIENT}")
        sb.log_sink.flush()
        last_day = clock().date()
        fake_calls = list(sb.fake.calls)
        usage, log_report, run = _reports(settings, customers, first_day, last_day, clock)
        info = sb.info()
    failures, checks = _check(customers, calls, fake_calls, usage, log_report, run)
    return DemoResult(
        info=info,
        customers=customers,
        calls=calls,
        usage=usage,
        reconcile=log_report,
        invoices=run,
        failures=failures,
        checks=checks,
        seconds=time.perf_counter() - started,
    )


def sdk_call(sb, token: str, customer: str, model: str) -> dict[str, Any]:
    """One Converse call through boto3's ``bedrock-runtime`` client on the sandbox's HTTPS
    endpoint, the token as the Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``, set for the
    call only: botocore reads it when the client is made and when it signs)."""
    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError

    core = botocore.session.Session()  # the user's AWS configuration plays no part
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    saved = os.environ.get("AWS_BEARER_TOKEN_BEDROCK")
    os.environ["AWS_BEARER_TOKEN_BEDROCK"] = token
    client = None
    call: dict[str, Any] = {
        "customer": customer,
        "model": model,
        "expected_status": 200,
        "expected_code": None,
        "client": SDK_CLIENT,
        "usage": None,
    }
    try:
        client = boto3.Session(botocore_session=core).client(
            "bedrock-runtime",
            region_name=sb.region,
            endpoint_url=sb.bedrock_endpoint_url,
            verify=sb.ca_bundle,
            config=Config(proxies={}, retries={"total_max_attempts": 1}),
        )
        answer = client.converse(
            modelId=model,
            messages=[{"role": "user", "content": [{"text": "What is the capital of France?"}]}],
            inferenceConfig={"maxTokens": 1000},
        )
        blocks = answer["output"]["message"]["content"]
        call.update(
            status=answer["ResponseMetadata"]["HTTPStatusCode"],
            code=None,
            answer="".join(b.get("text", "") for b in blocks),
            usage={"input_tokens": answer["usage"]["inputTokens"],
                   "output_tokens": answer["usage"]["outputTokens"]},
        )  # fmt: skip
    except ClientError as err:
        call.update(
            status=err.response["ResponseMetadata"].get("HTTPStatusCode"),
            code=err.response["Error"].get("Code"),
            answer=None,
        )
    finally:
        if saved is None:
            os.environ.pop("AWS_BEARER_TOKEN_BEDROCK", None)
        else:
            os.environ["AWS_BEARER_TOKEN_BEDROCK"] = saved
        if client is not None:
            client.close()
    return call


def _answer_text(body: dict) -> str | None:
    for part in body.get("content") or []:
        if isinstance(part, dict) and part.get("type") == "text":
            return part.get("text")
    return None


def _reports(settings, customers, first_day, last_day, clock):
    from ..services.invoices import InvoiceRun, run_invoices
    from ..services.usage_reports import reconcile, usage_report
    from ..services.usage_sources import counter_store, log_store

    ids = [c["customer_id"] for c in customers]
    counters = counter_store(settings)
    usage = usage_report(counters, ids, first_day, last_day, group_by="model", clock=clock)
    log = log_store(settings)  # the local engine: the sandbox marked the bucket
    log_report = reconcile(
        counters, log, ids, first_day, last_day, all_customers=False, clock=clock
    )
    # The demo's usage is this month's: its invoices are drafts of the current period.
    period = str(Period.of(clock()))
    run = InvoiceRun(period=period, finalize=False)
    for cid in ids:  # one by one: only the demo's customers, whatever else is in moto
        one = run_invoices(settings, period=period, customer_id=cid, price_book=demo_price_book())
        run.invoices += one.invoices
        run.outcomes += one.outcomes
        run.failures += one.failures
        run.no_usage += one.no_usage
        run.unpriced += one.unpriced
    return usage, log_report, run


def _check(customers, calls, fake_calls, usage, log_report, run) -> tuple[list[str], int]:
    failures: list[str] = []
    checks = 0

    def expect(what: str, got: Any, wanted: Any) -> None:
        nonlocal checks
        checks += 1
        if got != wanted:
            failures.append(f"{what}: expected {wanted!r}, got {got!r}")

    for n, call in enumerate(calls, 1):
        expect(
            f"request {n} ({call['customer']}, {call['model']})",
            (call["status"], call["code"]),
            (call["expected_status"], call["expected_code"]),
        )
        if call["expected_status"] == 200:
            expect(f"request {n} answer", bool(call["answer"]), True)
    sdk = next((c for c in calls if c.get("client") == SDK_CLIENT), None)
    if sdk is not None and sdk["usage"] is not None and fake_calls:
        # Sent last, so the fake's last call: the SDK saw exactly what Bedrock reported.
        reported = fake_calls[-1]
        expect(
            f"{SDK_CLIENT} answer and usage = what Bedrock sent",
            (sdk["answer"], sdk["usage"]),
            (
                reported["output_text"],
                {k: reported[k] for k in ("input_tokens", "output_tokens")},
            ),
        )
    sdk_customer = next((c for c in customers if c["name"] == SDK_CUSTOMER), None)
    if sdk is not None and sdk_customer is not None:
        answered = sum(
            1 for c in calls if c["customer"] == SDK_CUSTOMER and c["expected_status"] == 200
        )
        counted = usage.customer_totals.get(sdk_customer["customer_id"], {}).get("requests")
        expect(
            f"{SDK_CUSTOMER}'s requests counted, the {SDK_CLIENT} one included", counted, answered
        )
    served = sum(1 for c in calls if c["expected_status"] == 200)
    refused = sum(1 for c in calls if c["expected_status"] in (403, 429))
    expect("Bedrock calls (only admitted requests reach the model)", len(fake_calls), served)
    totals = usage.totals
    expect("requests counted", totals["requests"], served)
    expect("refusals counted", totals["refused"], refused)
    expect("errors counted", totals["errors"], 0)
    for counter in ("input_tokens", "output_tokens"):
        reported = sum(c[counter] for c in fake_calls)
        expect(f"{counter} counted = what Bedrock reported", totals[counter], reported)
    expect("usage log read by the local engine", log_report.log_source, "local")
    expect("counters and usage log agree", [d.to_dict() for d in log_report.differences], [])
    expect("invoice failures", run.failures, [])
    expect("invoices drafted", len(run.invoices), len(customers))
    expect("usage the plans do not price", run.unpriced, [])
    by_plan = {doc.get("plan"): doc for doc in run.invoices}
    if "team" in by_plan:
        expect("team invoice total", Decimal(by_plan["team"]["total"]), TEAM_TOTAL)
    scale_id = next((c["customer_id"] for c in customers if c.get("plan") == "scale"), None)
    if "scale" in by_plan and scale_id in usage.customer_totals:
        counts = usage.customer_totals[scale_id]
        tokens = sum(counts[k] for k in TOKEN_COUNTERS)
        expect("scale invoice total", Decimal(by_plan["scale"]["total"]), scale_total(tokens))
    if "starter" in by_plan:
        expect("starter invoice is positive", Decimal(by_plan["starter"]["total"]) > 0, True)
    return failures, checks
