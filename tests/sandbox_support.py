"""Reading what a TLS sandbox (the ``tls_sandbox`` fixture) recorded for one customer: the
usage log lines the proxy wrote to moto's S3, and the counters."""

from __future__ import annotations

import json


def log_lines(sandbox, customer_id: str, *, admissions: bool = False) -> list[dict]:
    """Every outcome line of ``customer_id`` (with ``admissions``, the lines written at
    admission too), in the order they were written."""
    sandbox.log_sink.flush()
    from botocore.config import Config

    s3 = (
        sandbox.settings()
        .session()
        .client("s3", endpoint_url=sandbox.aws_endpoint_url, config=Config(proxies={}))
    )
    lines: list[dict] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=sandbox.log_bucket, Prefix=sandbox.log_prefix
    )
    for page in pages:
        for item in sorted(page.get("Contents", []), key=lambda i: i["Key"]):
            body = s3.get_object(Bucket=sandbox.log_bucket, Key=item["Key"])["Body"].read()
            for text in body.decode().splitlines():
                line = json.loads(text)
                if line.get("customer_id") != customer_id:
                    continue
                if admissions or line.get("event_type") != "proxy_admitted":
                    lines.append(line)
    return lines


def usage_totals(sandbox, customer_id: str) -> dict:
    """The counters' totals for ``customer_id`` today (requests, tokens, refused, errors)."""
    from bedrock_billing.services.usage_reports import usage_report
    from bedrock_billing.services.usage_sources import counter_store

    today = sandbox.clock().date()
    store = counter_store(sandbox.settings())
    return usage_report(store, [customer_id], today, today).totals
