"""The one JSON log line per request, and the CloudWatch metric for a lost counter write.

The line has exactly the fields of ``core.logschema.FIELDS``. It never holds a prompt, an
answer or a token. The metric is a separate line in CloudWatch's Embedded Metric Format,
so CloudWatch turns it into a metric with no API call from the proxy; it has no
``event_type`` and the log pipeline's subscription filter (``{ $.event_type = * }``)
leaves it out of the usage log.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from ..core.logschema import (
    EVENT_ADMITTED,
    EVENT_ERROR,
    EVENT_INVOKE,
    EVENT_REFUSED,
    EVENT_TEST,
    FIELD_NAMES,
    METRIC_NAMESPACE,
    METRIC_WRITE_FAILURES,
)
from ..core.metrics import CUSTOMER_METRICS, DIMENSION_CUSTOMER, DIMENSION_MODEL, REQUEST_METRICS
from ..core.models import inference_scope
from ..core.timeutil import epoch_seconds, iso_z


def print_sink(record: dict) -> None:
    """Lambda sends stdout to CloudWatch Logs, one line per write."""
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


@dataclass
class RequestLog:
    """What a request gathered on its way; ``line()`` renders it."""

    timestamp: object = None  # datetime of admission
    request_id: str | None = None
    customer_id: str | None = None
    model_id: str | None = None
    foundation_model: str | None = None
    api: str | None = None
    streamed: bool = False
    status: int = 500
    error_code: str | None = None
    usage: object = None  # usage.Usage or None
    admitted: bool = False
    duration_ms: int = 0
    bedrock_request_id: str | None = None
    service_tier: str | None = None
    counter_write_failed: bool = False
    near_timeout: bool = False
    wire_api: str | None = None
    undelivered: bool = False  # the client did not receive the whole answer (issue 13)
    charged: bool | None = None  # set when the outcome's billing is decided apart from status
    request_bytes: int | None = None
    max_tokens: int | None = None
    key_id: str | None = None  # the key's id (never its token)
    test: bool = False  # a test key: answered by the test responder, never billed
    source_ip: str | None = None  # API Gateway's source address (never a client's header)
    security_events: int | None = None  # proxy/security.py: set on a security event only

    def event_type(self) -> str:
        if not self.admitted:
            return EVENT_REFUSED
        if self.test:
            return EVENT_TEST  # never billed, whatever the outcome
        if self.charged is not None:
            return EVENT_INVOKE if self.charged else EVENT_ERROR
        return EVENT_INVOKE if self.status == 200 else EVENT_ERROR

    def admission_line(self) -> dict:
        """The line written at admission, before the Bedrock call: what is known then."""
        known = {
            "timestamp": iso_z(self.timestamp),
            "event_type": EVENT_ADMITTED,
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "model_id": self.model_id,
            "foundation_model": self.foundation_model,
            "api": self.api,
            "streamed": self.streamed,
            "wire_api": self.wire_api,
            "request_bytes": self.request_bytes,
            "max_tokens": self.max_tokens,
            "key_id": self.key_id,
            "source_ip": self.source_ip,
        }
        return {name: known.get(name) for name in FIELD_NAMES}

    def line(self) -> dict:
        usage = self.usage
        tokens = {
            "input_tokens": getattr(usage, "input_tokens", None),
            "output_tokens": getattr(usage, "output_tokens", None),
            "cache_read_input_tokens": getattr(usage, "cache_read_input_tokens", None),
            "cache_write_input_tokens": getattr(usage, "cache_write_input_tokens", None),
            "cache_write_1h_input_tokens": getattr(usage, "cache_write_1h_input_tokens", None),
            "token_count": getattr(usage, "token_count", None),
        }
        record = {
            "timestamp": iso_z(self.timestamp),
            "event_type": self.event_type(),
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "model_id": self.model_id,
            "foundation_model": self.foundation_model,
            "api": self.api,
            "streamed": self.streamed,
            "status": self.status,
            "error_code": self.error_code,
            **tokens,
            "usage_estimated": bool(getattr(usage, "estimated", False)) if usage else None,
            "duration_ms": self.duration_ms,
            "bedrock_latency_ms": getattr(usage, "latency_ms", None),
            "bedrock_request_id": self.bedrock_request_id,
            "service_tier": self.service_tier,
            "inference_scope": inference_scope(self.model_id) if self.admitted else None,
            "counter_write_failed": self.counter_write_failed,
            "near_timeout": self.near_timeout,
            "wire_api": self.wire_api,
            "delivered": (not self.undelivered) if self.admitted else None,
            "request_bytes": self.request_bytes,
            "max_tokens": self.max_tokens,
            "repaired": False,  # only reconcile --repair books a line (docs/reconcile.md)
            "note": None,
            "key_id": self.key_id,
            "test_key": self.test,
            "source_ip": self.source_ip,
            "security_events": self.security_events,
        }
        return record  # tests check its keys are exactly FIELD_NAMES, in order


def write_failure_metric(log: RequestLog) -> dict:
    """An Embedded Metric Format record: one count of a lost usage write."""
    return {
        "_aws": {
            "Timestamp": epoch_seconds(log.timestamp) * 1000 if log.timestamp else 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": METRIC_WRITE_FAILURES, "Unit": "Count"}],
                }
            ],
        },
        METRIC_WRITE_FAILURES: 1,
        "request_id": log.request_id,
        "customer_id": log.customer_id,
    }


def _model_dimension(log: RequestLog) -> str:
    """The ``Model`` value: the foundation model only when Bedrock answered for it, so the
    metric count stays bounded by the models the stack can call. Any caller can name any
    well-formed model id (before the token is even checked), and every new value would be
    a new metric billed each month; the others count as ``other`` (or ``none``)."""
    if not log.foundation_model:
        return "none"
    return log.foundation_model if log.admitted and log.status == 200 else "other"


def request_metrics(log: RequestLog, per_customer: bool = False) -> dict:
    """One EMF record for one request: separate from the usage line (whose keys are
    fixed), with no ``event_type`` so the usage-log pipeline leaves it out."""
    refused = not log.admitted
    # A test key's answer is not usage (never billed): no request and no tokens here either.
    usage = None if log.test else log.usage
    values = {
        # A billed request, as the usage line counts it: a generation stopped at the
        # deadline or never delivered is billed by default (issue 13) though not a 200.
        "Requests": 1 if log.event_type() == EVENT_INVOKE else 0,
        "Errors": 1 if log.admitted and log.status != 200 else 0,
        "Refusals": 1 if refused else 0,
        "Throttles": 1 if refused and log.status == 429 else 0,
        "Latency": log.duration_ms,
        "InputTokens": getattr(usage, "input_tokens", 0) or 0,
        "OutputTokens": getattr(usage, "output_tokens", 0) or 0,
        "Tokens": getattr(usage, "token_count", 0) or 0,
    }
    directives = [
        {
            "Namespace": METRIC_NAMESPACE,
            "Dimensions": [[DIMENSION_MODEL], []],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in REQUEST_METRICS],
        }
    ]
    record: dict = {
        "_aws": {
            "Timestamp": epoch_seconds(log.timestamp) * 1000 if log.timestamp else 0,
            "CloudWatchMetrics": directives,
        },
        DIMENSION_MODEL: _model_dimension(log),
        **values,
        "request_id": log.request_id,
    }
    if per_customer and log.customer_id:
        units = dict(REQUEST_METRICS)
        directives.append(
            {
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [[DIMENSION_CUSTOMER]],
                "Metrics": [{"Name": n, "Unit": units[n]} for n in CUSTOMER_METRICS],
            }
        )
        record[DIMENSION_CUSTOMER] = log.customer_id
    return record
