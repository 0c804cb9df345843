"""Where a command acts: the stage, region and account it writes to, and every resolved
setting with where it came from (``config show``, as ``aws configure list``)."""

from __future__ import annotations

from typing import Any

from ..awsclient import caller_account, endpoint_for
from ..settings import FILE_KEYS

SHOWN = ("stage", *FILE_KEYS)
SERVICES = ("dynamodb", "s3", "athena", "cloudformation", "sts")


def write_target(settings) -> dict[str, Any]:
    """The stage, region and account a write went to (the account from STS; None when
    STS cannot be asked)."""
    return {
        "stage": settings.stage,
        "region": settings.session().region_name,
        "account": caller_account(settings),
    }


def settings_report(settings) -> dict[str, Any]:
    """Each resolved setting, its value and its source; the config file; the endpoint each
    service is reached at (a service-specific variable can move one)."""
    rows = []
    for key in SHOWN:
        value = getattr(settings, key)
        source = settings.sources.get(key) or ("default" if value is not None else "unset")
        rows.append({"name": key, "value": value, "source": source})
    if settings.recorded_region and settings.region != settings.recorded_region:
        rows.append({"name": "recorded_region", "value": settings.recorded_region,
                     "source": f"config file [{settings.stage}]"})  # fmt: skip
    endpoints = [
        {"service": service, "endpoint_url": endpoint_for(settings, service)}
        for service in SERVICES
    ]
    return {
        "settings": rows,
        "config_file": str(settings.config_file) if settings.config_file else None,
        "endpoints": endpoints,
    }
