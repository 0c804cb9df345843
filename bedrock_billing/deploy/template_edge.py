"""The stack's optional front-door protection: an AWS WAF web ACL with a per-IP rate rule
on the API stage, and API Gateway access logs. Both are off unless ``deploy`` asks for
them (``--waf-rate-limit``, ``--access-logs``); reserved concurrency is a property of the
function (template.py). Pure: returns resource dicts (docs/deploy.md, "Protection").

The stage's own throttle (``--throttle-rate``) is shared by every caller, anonymous ones
included; the WAF rule blocks one address that sends more than its limit, before API
Gateway or the proxy sees the request.
"""

from __future__ import annotations

import json

from .config import DeployConfig

WAF_WINDOW_SECONDS = 300  # the rate rule counts each address's requests over 5 minutes
RATE_LIMITED_BODY = "rate-limited"
# The proxy's error shape (docs/proxy.md), so a client reads WAF's refusal as the proxy's.
RATE_LIMITED_JSON = json.dumps(
    {
        "error": {
            "code": "ip_rate_limited",
            "message": "too many requests from this address; retry later",
        }
    },
    separators=(",", ":"),
)

# API Gateway access-log line: who called what and how it ended. $context.resourcePath is
# the route template, never the request's path (a model id, or a token mistaken for one,
# stays out); no header is logged.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "ip": "$context.identity.sourceIp",
        "requestTimeEpoch": "$context.requestTimeEpoch",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
    },
    separators=(",", ":"),
)


def _visibility(name: str) -> dict:
    return {
        "SampledRequestsEnabled": True,
        "CloudWatchMetricsEnabled": True,
        "MetricName": name,
    }


def waf_resources(cfg: DeployConfig) -> dict[str, dict]:
    """A regional web ACL (allow by default, one rate-based rule) on the API's stage."""
    if cfg.waf_rate_limit is None:
        return {}
    name = f"{cfg.base}-api"
    return {
        "WebAcl": {
            "Type": "AWS::WAFv2::WebACL",
            "Properties": {
                "Name": name,
                "Description": f"bedrock-billing {cfg.stage}: per-IP rate limit",
                "Scope": "REGIONAL",
                "DefaultAction": {"Allow": {}},
                "CustomResponseBodies": {
                    RATE_LIMITED_BODY: {
                        "ContentType": "APPLICATION_JSON",
                        "Content": RATE_LIMITED_JSON,
                    }
                },
                "Rules": [
                    {
                        "Name": "per-ip-rate-limit",
                        "Priority": 0,
                        "Statement": {
                            "RateBasedStatement": {
                                "Limit": cfg.waf_rate_limit,
                                "EvaluationWindowSec": WAF_WINDOW_SECONDS,
                                "AggregateKeyType": "IP",
                            }
                        },
                        "Action": {
                            "Block": {
                                "CustomResponse": {
                                    "ResponseCode": 429,
                                    "CustomResponseBodyKey": RATE_LIMITED_BODY,
                                }
                            }
                        },
                        "VisibilityConfig": _visibility(f"{name}-per-ip"),
                    }
                ],
                "VisibilityConfig": _visibility(name),
            },
        },
        "WebAclAssociation": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            # The stage must exist before a web ACL can be attached to it.
            "DependsOn": ["ApiStage"],
            "Properties": {
                "ResourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
                    f"${{Api}}/stages/{cfg.api_stage}"
                },
                "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
            },
        },
    }


def access_log_resources(cfg: DeployConfig) -> dict[str, dict]:
    if not cfg.access_logs:
        return {}
    return {
        "ApiAccessLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": cfg.access_log_group_name,
                "RetentionInDays": cfg.log_retention_days,
            },
        }
    }


def access_log_setting(cfg: DeployConfig) -> dict | None:
    """The stage's ``AccessLogSetting`` (None when access logs are off). The destination
    is the group's ARN without the ``:*`` that ``Fn::GetAtt`` would append."""
    if not cfg.access_logs:
        return None
    return {
        "DestinationArn": {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
            "log-group:${ApiAccessLogGroup}"
        },
        "Format": ACCESS_LOG_FORMAT,
    }


def edge_resources(cfg: DeployConfig) -> dict[str, dict]:
    return {**waf_resources(cfg), **access_log_resources(cfg)}


def apply_to_stage(cfg: DeployConfig, resources: dict[str, dict]) -> None:
    """Give the API stage its access-log setting, when asked for."""
    setting = access_log_setting(cfg)
    if setting is not None:  # its Fn::Sub of the group orders the group first
        resources["ApiStage"]["Properties"]["AccessLogSetting"] = setting
