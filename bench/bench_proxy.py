"""Benchmark of the proxy's hot path, for a warm container. Prints figures, asserts nothing.

- DynamoDB calls per warm request (counted with botocore's event hooks), with a daily
  limit and a monthly token limit set, then with requests per minute too; and per request
  whose Bedrock call fails (admission + the error transaction with its marker);
- handler CPU time per warm request, Bedrock faked in process (no HTTP) and DynamoDB as
  moto's server in another process, so the CPU counted is the proxy's and botocore's;
- the cold import of the handler module next to ``import boto3`` alone (subprocesses,
  medians of several runs);
- the first request's wall time apart from later ones, in the same run.

Run: ``PYTHONPATH=. python bench/bench_proxy.py [--requests 200] [--runs 7]``
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import boto3  # noqa: E402

from bedrock_billing.core.schema import TableNames  # noqa: E402
from bedrock_billing.proxy.config import ProxyConfig  # noqa: E402
from bedrock_billing.proxy.handler import Proxy  # noqa: E402
from bedrock_billing.proxy.prices import PriceTable  # noqa: E402
from tests.proxy_support import (  # noqa: E402
    StubBedrock,
    claude_body,
    create_tables,
    event,
    put_customer,
    put_token,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "moto_server"),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto_server did not start")


def lambda_like_copy() -> str:
    """The package as a Lambda zip should ship it: a copy with compiled bytecode.

    (Lambda's /var/task is read-only, so a zip without .pyc files recompiles every module
    on every cold start; boto3 in site-packages is compiled already.)
    """
    target = tempfile.mkdtemp(prefix="bench-proxy-")
    shutil.copytree(os.path.join(ROOT, "bedrock_billing"), os.path.join(target, "bedrock_billing"))
    compileall.compile_dir(target, quiet=1)
    return target


def median_import(statement: str, runs: int, path: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "PYTHONPATH": path},
            cwd=path,
        )
        times.append(float(out.stdout))
    return statistics.median(times)


def scenario(moto_url: str, n: int, **limits) -> dict:
    creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    ddb = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1", **creds)
    tables = TableNames.for_stage("bench" + uuid.uuid4().hex[:6])
    create_tables(ddb, tables)
    cid = put_customer(ddb, tables, **limits)
    token = put_token(ddb, tables, cid)
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    bedrock = StubBedrock()
    proxy = Proxy(
        # As deployed: EMF request metrics on, per customer too (they are log lines, no call).
        ProxyConfig(
            tables=tables,
            prices=PriceTable.from_env({}),
            request_metrics=True,
            customer_metrics=True,
        ),
        dynamodb=ddb,
        bedrock_runtime=bedrock,
        log_sink=lambda line: None,
    )
    ev = event(claude_body(), token)
    t0 = time.perf_counter()
    first = proxy.handle(ev)
    first_ms = (time.perf_counter() - t0) * 1000
    assert first["statusCode"] == 200, first
    first_calls = len(calls)
    calls.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        assert proxy.handle(ev)["statusCode"] == 200
    cpu = (time.process_time() - cpu) / n * 1000
    wall = (time.perf_counter() - wall) / n * 1000
    warm_calls = list(calls)
    calls.clear()
    bedrock.error = ("ServiceUnavailableException", "bench")
    failed = max(10, n // 10)
    for _ in range(failed):
        assert proxy.handle(event(claude_body(), token))["statusCode"] == 503
    failed_calls = list(calls)
    bedrock.error = None
    calls[:] = warm_calls
    return {
        "first_request_ms": round(first_ms, 2),
        "first_request_dynamodb_calls": first_calls,
        "warm_wall_ms": round(wall, 2),
        "warm_cpu_ms": round(cpu, 3),
        "warm_dynamodb_calls_per_request": len(calls) / n,
        "warm_calls": sorted(set(calls)),
        "failed_dynamodb_calls_per_request": len(failed_calls) / failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    moto, url = start_moto()
    try:
        two = scenario(url, args.requests, daily_request_limit=10**6, monthly_token_limit=10**12)
        three = scenario(
            url,
            args.requests,
            daily_request_limit=10**6,
            monthly_token_limit=10**12,
            requests_per_minute=10**6,
        )
    finally:
        moto.terminate()
        moto.wait()
    package = lambda_like_copy()
    try:
        # Interleaved, so a busy neighbour on the machine slows both alike.
        boto3_runs, handler_runs = [], []
        for _ in range(args.runs):
            boto3_runs.append(median_import("import boto3", 1, package))
            handler_runs.append(median_import("import bedrock_billing.proxy.handler", 1, package))
        boto3_import = statistics.median(boto3_runs)
        handler_import = statistics.median(handler_runs)
        source_only = median_import("import bedrock_billing.proxy.handler", 3, ROOT)
    finally:
        shutil.rmtree(package, ignore_errors=True)
    result = {
        "daily+monthly_tokens": two,
        "daily+monthly_tokens+rpm": three,
        "cold_import_s": {
            "boto3": round(boto3_import, 4),
            "bedrock_billing.proxy.handler": round(handler_import, 4),
            "ratio": round(handler_import / boto3_import, 3),
            "handler_without_pyc": round(source_only, 4),
            "runs": args.runs,
        },
    }
    print(json.dumps(result, indent=2))
    print(
        f"\nwarm DynamoDB calls/request: {two['warm_dynamodb_calls_per_request']:.2f} "
        f"(goal <= 2), with rpm {three['warm_dynamodb_calls_per_request']:.2f} (goal <= 3); "
        f"a failed request {two['failed_dynamodb_calls_per_request']:.2f}\n"
        f"warm handler CPU/request: {two['warm_cpu_ms']:.2f} ms; first request "
        f"{two['first_request_ms']:.1f} ms vs warm {two['warm_wall_ms']:.1f} ms wall\n"
        f"cold import: handler {handler_import * 1000:.0f} ms vs boto3 "
        f"{boto3_import * 1000:.0f} ms (x{handler_import / boto3_import:.2f}, goal <= 1.15)"
    )


if __name__ == "__main__":
    main()
