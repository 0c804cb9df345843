"""``deploy --invocation-logs metadata``: Bedrock's model invocation logging for the region,
metadata only, to a prefix of the stack's log bucket.

The logging configuration is one per account and region, shared by every application that
calls Bedrock there, so it is read first (GetModelInvocationLoggingConfiguration) and an
operator's own configuration is never replaced silently: ``enable`` refuses and says what
is there unless ``force``. All five data-delivery flags (text, image, embedding, video,
audio: PutModelInvocationLoggingConfiguration's ``loggingConfig`` in botocore's model) are
sent as false, so Bedrock writes each call's metadata (ids, model, token counts, request
metadata) and never a prompt or an answer. The bucket policy Bedrock needs and the
lifecycle rule come with the stack's template (template_logs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import Conflict
from ..core.invocationlog import INVOCATION_LOG_PREFIX

DATA_FLAGS = (
    "textDataDeliveryEnabled",
    "imageDataDeliveryEnabled",
    "embeddingDataDeliveryEnabled",
    "videoDataDeliveryEnabled",
    "audioDataDeliveryEnabled",
)
MODES = ("metadata", "off")


def metadata_only_config(bucket: str, prefix: str = INVOCATION_LOG_PREFIX) -> dict:
    """The ``loggingConfig``: S3 only, every data-delivery flag off."""
    return {
        "s3Config": {"bucketName": bucket, "keyPrefix": prefix.strip("/")},
        **{flag: False for flag in DATA_FLAGS},
    }


def _flags_for(client) -> tuple[str, ...]:
    """The data flags this botocore's Bedrock model knows (older ones lack video/audio)."""
    shape = client.meta.service_model.shape_for("LoggingConfig")
    return tuple(f for f in DATA_FLAGS if f in shape.members)


def describe(config: dict | None) -> str:
    """One line saying what a logging configuration does."""
    if not config:
        return "no model invocation logging"
    places = []
    s3 = config.get("s3Config") or {}
    if s3.get("bucketName"):
        places.append(f"S3 s3://{s3['bucketName']}/{s3.get('keyPrefix') or ''}")
    cw = config.get("cloudWatchConfig") or {}
    if cw.get("logGroupName"):
        places.append(f"CloudWatch Logs group {cw['logGroupName']}")
    data = [f.removesuffix("DataDeliveryEnabled") for f in DATA_FLAGS if config.get(f)]
    what = f"with {', '.join(data)} data" if data else "metadata only"
    return f"logging to {' and '.join(places) or 'nowhere'}, {what}"


def is_ours(config: dict | None, bucket: str, prefix: str = INVOCATION_LOG_PREFIX) -> bool:
    if not config:
        return False
    s3 = config.get("s3Config") or {}
    return (
        s3.get("bucketName") == bucket
        and (s3.get("keyPrefix") or "").strip("/") == prefix.strip("/")
        and not config.get("cloudWatchConfig")
        and not any(config.get(f) for f in DATA_FLAGS)
    )


@dataclass
class LoggingResult:
    outcome: str  # enabled | unchanged | replaced
    previous: str
    current: str


def current_config(bedrock) -> dict | None:
    return bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or None


def check(
    bedrock, bucket: str, *, prefix: str = INVOCATION_LOG_PREFIX, force: bool = False
) -> dict | None:
    """The region's configuration; Conflict when it is another one and not ``force``."""
    current = current_config(bedrock)
    if current and not force and not is_ours(current, bucket, prefix):
        raise Conflict(
            "Bedrock model invocation logging in this region is already set ("
            + describe(current)
            + "): it is one setting per account and region, shared by every application; "
            "pass --force to replace it with this stack's metadata-only logging"
        )
    return current


def enable(
    bedrock,
    bucket: str,
    *,
    prefix: str = INVOCATION_LOG_PREFIX,
    force: bool = False,
) -> LoggingResult:
    """Turn on metadata-only logging to ``s3://bucket/prefix``; refuse to replace another
    configuration unless ``force``."""
    current = check(bedrock, bucket, prefix=prefix, force=force)
    if is_ours(current, bucket, prefix):
        return LoggingResult("unchanged", describe(current), describe(current))
    wanted = metadata_only_config(bucket, prefix)
    known = _flags_for(bedrock)
    wanted = {k: v for k, v in wanted.items() if k not in DATA_FLAGS or k in known}
    bedrock.put_model_invocation_logging_configuration(loggingConfig=wanted)
    return LoggingResult("replaced" if current else "enabled", describe(current), describe(wanted))
