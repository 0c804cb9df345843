"""boto3 sessions and clients for the CLI side, and the translation of AWS failures.

Every botocore failure a command can meet (no credentials, unreachable endpoint,
throttling after retries, missing table, access denied) becomes an ``AwsError`` with one
readable line here, so the CLI renders it in its one error path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from ..core.errors import AwsError, BillingError

DEFAULT_LOCAL_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

SESSION_HOOKS: list[Callable[[Any], None]] = []
"""Callables run on every new boto3 session (tests register botocore event handlers here)."""


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def make_session(settings) -> Any:
    """A boto3 session for the settings. A loopback endpoint with no credentials configured
    gets dummy ones (the sandbox accepts anything), so a fresh shell can talk to it."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise AwsError(f"AWS profile not found: {exc.kwargs.get('profile')}") from None
    if is_loopback(settings.endpoint_url):
        region = session.region_name or DEFAULT_LOCAL_REGION
        if session.get_credentials() is None:
            session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)
        elif session.region_name is None:
            session = boto3.Session(profile_name=settings.profile, region_name=region)
    for hook in SESSION_HOOKS:
        hook(session)
    return session


def make_client(settings, service: str) -> Any:
    from botocore.config import Config

    session = settings.session()
    if session.region_name is None:
        raise AwsError("no AWS region configured: pass --region or set AWS_REGION")
    # A loopback endpoint (the sandbox) is reached directly, never through HTTP_PROXY.
    proxies = {} if is_loopback(settings.endpoint_url) else None
    config = Config(
        retries={"mode": "standard"}, connect_timeout=5, read_timeout=30, proxies=proxies
    )
    return session.client(service, endpoint_url=settings.endpoint_url or None, config=config)


_THROTTLING = {
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
_BAD_CREDENTIALS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}


def aws_error(exc: BaseException, resource_hint: str | None = None) -> BillingError | None:
    """Turn a botocore exception into an AwsError with one readable line, or None."""
    try:
        import botocore.exceptions as bx
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsError(
            "no AWS credentials found: configure a profile (--profile), set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY, or point --endpoint-url at a local sandbox"
        )
    if isinstance(exc, bx.NoRegionError):
        return AwsError("no AWS region configured: pass --region or set AWS_REGION")
    if isinstance(exc, bx.ProfileNotFound):
        return AwsError(f"AWS profile not found: {exc.kwargs.get('profile')}")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return AwsError(
            f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}".strip()
        )
    if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return AwsError(f"the AWS endpoint timed out {exc.kwargs.get('endpoint_url', '')}".strip())
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        op = getattr(exc, "operation_name", "") or "request"
        if code == "ResourceNotFoundException" and resource_hint:
            return AwsError(resource_hint)
        if code in _THROTTLING:
            return AwsError(f"AWS throttled {op} and retries did not help: try again shortly")
        if code in _DENIED:
            return AwsError(f"access denied to {op}: check the IAM permissions of your identity")
        if code in _BAD_CREDENTIALS:
            return AwsError(f"AWS rejected the credentials ({code}): check your profile or keys")
        message = error.get("Message") or code or "unknown error"
        return AwsError(f"AWS {op} failed: {code}: {message}")
    if isinstance(exc, bx.BotoCoreError):
        return AwsError(f"AWS call failed: {exc}")
    return None
