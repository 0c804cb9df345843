"""The stack's CloudWatch dashboard over the proxy's EMF metrics, and the alarms on its error
rate and p99 latency (beside template_alarms.py's). Pure: returns resource dicts.

Costs (https://aws.amazon.com/cloudwatch/pricing/, docs/metrics.md): a dashboard is $3 a
month beyond an account's first three; each alarm $0.10 a month per metric it reads.
"""

from __future__ import annotations

import json

from bedrock_billing.core.logschema import METRIC_NAMESPACE, METRIC_WRITE_FAILURES
from bedrock_billing.core.metrics import DIMENSION_CUSTOMER, DIMENSION_MODEL

from .config import DeployConfig

NAMESPACE = METRIC_NAMESPACE
ERROR_RATE_PERCENT = 5  # of admitted requests, over 5 minutes
P99_LATENCY_MS = 20_000  # API Gateway gives up at 29 s
MIN_REQUESTS = 20  # an error rate over fewer admitted requests does not alarm


def _metric(name: str, stat: str = "Sum", label: str | None = None) -> list:
    return [NAMESPACE, name, {"stat": stat, "label": label or name}]


def dashboard_body(cfg: DeployConfig) -> str:
    region = "${AWS::Region}"

    def widget(title: str, metrics: list, x: int, y: int, **extra) -> dict:
        props = {"title": title, "region": region, "metrics": metrics, "period": 300, **extra}
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props}

    top = (
        f"SORT(SEARCH('{{{NAMESPACE},{DIMENSION_CUSTOMER}}} MetricName=\"Tokens\"', "
        "'Sum', 3600), SUM, DESC, 10)"
    )
    widgets = [
        widget(
            "Requests, errors, refusals",
            [_metric("Requests"), _metric("Errors"), _metric("Refusals")],
            0,
            0,
            stat="Sum",
        ),
        widget(
            "Latency (proxy, ms)",
            [_metric("Latency", "p50", "p50"), _metric("Latency", "p99", "p99")],
            12,
            0,
        ),
        widget("Throttles (429)", [_metric("Throttles")], 0, 6),
        widget(
            "Usage writes lost",
            [_metric(METRIC_WRITE_FAILURES)],
            12,
            6,
        ),
        widget(
            "Tokens by model",
            [
                [
                    {
                        "expression": f"SEARCH('{{{NAMESPACE},{DIMENSION_MODEL}}} "
                        f"MetricName=\"Tokens\"', 'Sum', 300)",
                        "id": "m",
                        "label": "",
                    }
                ]
            ],  # fmt: skip
            0,
            12,
        ),
        widget(
            "Top customers by tokens (needs per-customer metrics)",
            [[{"expression": top, "id": "t", "label": ""}]],
            12,
            12,
            period=3600,
        ),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def dashboard_resources(cfg: DeployConfig) -> dict[str, dict]:
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}

    def stat(mid: str, name: str, stat_name: str, visible: bool = False) -> dict:
        return {
            "Id": mid,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": name},
                "Period": 300,
                "Stat": stat_name,
            },
            "ReturnData": visible,
        }

    error_rate = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"More than {ERROR_RATE_PERCENT}% of admitted requests failed "
            "in 5 minutes (Bedrock or the proxy)",
            "Metrics": [
                stat("errors", "Errors", "Sum"),
                stat("ok", "Requests", "Sum"),
                {
                    "Id": "rate",
                    "Expression": f"IF(errors + ok >= {MIN_REQUESTS}, "
                    "100 * errors / (errors + ok), 0)",
                    "Label": "Error rate (%)",
                    "ReturnData": True,
                },
            ],
            "EvaluationPeriods": 1,
            "Threshold": ERROR_RATE_PERCENT,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
            "OKActions": actions,
        },
    }
    latency = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"p99 latency of the proxy above {P99_LATENCY_MS} ms for "
            "two 5-minute periods",
            "Namespace": NAMESPACE,
            "MetricName": "Latency",
            "ExtendedStatistic": "p99",
            "Period": 300,
            "EvaluationPeriods": 2,
            "Threshold": P99_LATENCY_MS,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
            "OKActions": actions,
        },
    }
    return {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": f"{cfg.base}",
                "DashboardBody": {"Fn::Sub": dashboard_body(cfg)},
            },
        },
        "ErrorRateAlarm": error_rate,
        "LatencyP99Alarm": latency,
    }
