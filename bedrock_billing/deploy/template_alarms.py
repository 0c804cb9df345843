"""The stack's alarms: the proxy's errors and throttles, API 5xx, usage counters the proxy
could not write (its own EMF metric), customers refused because their stored item cannot be
read (a metric filter on the proxy's log lines), and usage-log delivery. They notify the SNS
topic given as the AlarmTopicArn parameter, when there is one. Pure: returns resource dicts."""

from __future__ import annotations

from bedrock_billing.core.customers import RECORD_INVALID_CODE, RECORD_INVALID_METRIC
from bedrock_billing.core.logschema import (
    METRIC_NAMESPACE,
    METRIC_WRITE_FAILURES,
    SECURITY_ALARM_THRESHOLD,
    SECURITY_METRIC,
)

from .config import DeployConfig


def _alarm(
    description: str,
    namespace: str,
    metric: str,
    dimensions: list[dict],
    *,
    statistic: str = "Sum",
    threshold: float = 0,
    period: int = 300,
    comparison: str = "GreaterThanThreshold",
) -> dict:
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    props: dict = {
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Statistic": statistic,
        "Period": period,
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "ComparisonOperator": comparison,
        "TreatMissingData": "notBreaching",
        "AlarmActions": actions,
        "OKActions": actions,
    }
    if dimensions:
        props["Dimensions"] = dimensions
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}


def record_invalid_filter(cfg: DeployConfig) -> dict:
    """Counts the proxy's log lines refusing a customer whose item cannot be read."""
    return {
        "Type": "AWS::Logs::MetricFilter",
        "DependsOn": ["ProxyLogGroup"],
        "Properties": {
            "LogGroupName": cfg.log_group_name,
            "FilterPattern": f'{{ $.error_code = "{RECORD_INVALID_CODE}" }}',
            "MetricTransformations": [
                {
                    "MetricNamespace": METRIC_NAMESPACE,
                    "MetricName": RECORD_INVALID_METRIC,
                    "MetricValue": "1",
                    "Unit": "Count",
                }
            ],
        },
    }


def security_filter(cfg: DeployConfig) -> dict:
    """Counts log lines where one address reached the threshold of security events (bad
    tokens, revoked or expired keys, requests outside an allowlist) in a container's window."""
    resource = record_invalid_filter(cfg)
    props = resource["Properties"]
    props["FilterPattern"] = f"{{ $.security_events >= {SECURITY_ALARM_THRESHOLD} }}"
    props["MetricTransformations"][0]["MetricName"] = SECURITY_METRIC
    return resource


def alarm_resources(cfg: DeployConfig) -> dict[str, dict]:
    fn = [{"Name": "FunctionName", "Value": {"Ref": "ProxyFunction"}}]
    return {
        "SecurityEventsMetricFilter": security_filter(cfg),
        "SecurityEventsAlarm": _alarm(
            f"One address made {SECURITY_ALARM_THRESHOLD} or more security events (bad tokens, "
            "revoked or expired keys, requests outside an allowlist) within 5 minutes",
            METRIC_NAMESPACE,
            SECURITY_METRIC,
            [],
        ),
        "RecordInvalidMetricFilter": record_invalid_filter(cfg),
        "CustomerRecordInvalidAlarm": _alarm(
            "The proxy refused a customer whose DynamoDB item breaks the schema "
            "(see `bedrock-billing show`)",
            METRIC_NAMESPACE,
            RECORD_INVALID_METRIC,
            [],
        ),
        "ProxyErrorsAlarm": _alarm("The proxy Lambda raised errors", "AWS/Lambda", "Errors", fn),
        "ProxyThrottlesAlarm": _alarm(
            "The proxy Lambda was throttled (concurrency limit)", "AWS/Lambda", "Throttles", fn
        ),
        "Api5xxAlarm": _alarm(
            "The REST API returned 5xx responses",
            "AWS/ApiGateway",
            "5XXError",
            [
                {"Name": "ApiName", "Value": cfg.api_name},
                {"Name": "Stage", "Value": cfg.api_stage},
            ],
        ),
        "UsageWriteFailuresAlarm": _alarm(
            "The proxy could not write usage counters to DynamoDB (usage may be under-counted)",
            METRIC_NAMESPACE,
            METRIC_WRITE_FAILURES,
            # The proxy emits the metric without dimensions (proxy/logline.py).
            [],
        ),
        "LogDeliveryErrorsAlarm": _alarm(
            "CloudWatch Logs could not forward usage log lines to Firehose",
            "AWS/Logs",
            "DeliveryErrors",
            [
                {"Name": "LogGroupName", "Value": cfg.log_group_name},
                {"Name": "DestinationType", "Value": "Firehose"},
                {"Name": "FilterName", "Value": "usage-log-to-s3"},
            ],
        ),
        "LogDeliveryFreshnessAlarm": _alarm(
            "Firehose has usage log records older than 30 minutes not yet delivered to S3",
            "AWS/Firehose",
            "DeliveryToS3.DataFreshness",
            [{"Name": "DeliveryStreamName", "Value": cfg.delivery_stream_name}],
            statistic="Maximum",
            threshold=1800,
        ),
    }
