"""The one AWS module: boto3 sessions and clients for the CLI, the services, ``deploy`` and
the sandbox, the endpoint each service is reached at, and AWS failures turned into one
readable line.

Endpoints follow boto3's own order (docs/decisions.md): an explicit ``--endpoint-url``
wins; else a service-specific ``AWS_ENDPOINT_URL_<SERVICE>`` wins over a global endpoint
(``AWS_ENDPOINT_URL``, ``BEDROCK_BILLING_ENDPOINT_URL``, the config file).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from .core.errors import AwsError, BillingError, InvalidInput

DEFAULT_LOCAL_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
BUSY_SUFFIX = "_IN_PROGRESS"

SESSION_HOOKS: list[Callable[[Any], None]] = []
"""Callables run on every new boto3 session (tests register botocore event handlers here)."""


def is_loopback(url: str | None) -> bool:
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def service_endpoint_variable(service: str) -> str:
    """The variable boto3 reads for one service's endpoint (``AWS_ENDPOINT_URL_DYNAMODB``),
    named as botocore names it (configprovider.ConfiguredEndpointProvider)."""
    from botocore import utils

    name = utils.SERVICE_NAME_ALIASES.get(service, service)
    name = utils.CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES.get(name, name)
    return "AWS_ENDPOINT_URL_" + name.replace("-", "_").upper()


def _ignore_configured(env) -> bool:
    return env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"


def endpoint_for(settings, service: str, env=None) -> str | None:
    """The endpoint one service is reached at, as boto3 would choose it."""
    env = os.environ if env is None else env
    url = settings.endpoint_url or None
    if getattr(settings, "sources", {}).get("endpoint_url", "").startswith("flag"):
        return url  # an explicit --endpoint-url wins over every variable, as in the AWS CLI
    if _ignore_configured(env):
        return None
    return env.get(service_endpoint_variable(service)) or url


def _any_loopback(settings, env=None) -> bool:
    """A loopback endpoint anywhere (global or one service's): the sandbox's dummy
    credentials apply."""
    env = os.environ if env is None else env
    if is_loopback(settings.endpoint_url):
        return True
    if _ignore_configured(env):
        return False
    return any(
        is_loopback(value) for name, value in env.items() if name.startswith("AWS_ENDPOINT_URL_")
    )


def make_session(settings) -> Any:
    """A boto3 session for the settings. A loopback endpoint with no credentials configured
    gets dummy ones (the sandbox accepts anything), so a fresh shell can talk to it."""
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise AwsError(f"AWS profile not found: {exc.kwargs.get('profile')}") from None
    if _any_loopback(settings):
        region = session.region_name or DEFAULT_LOCAL_REGION
        if session.get_credentials() is None:
            session = boto3.Session(region_name=region, **DUMMY_CREDENTIALS)
        elif session.region_name is None:
            session = boto3.Session(profile_name=settings.profile, region_name=region)
    for hook in SESSION_HOOKS:
        hook(session)
    return session


def client_config(endpoint_url: str | None):
    from botocore.config import Config

    # A loopback endpoint (the sandbox) is reached directly, never through HTTP_PROXY.
    proxies = {} if is_loopback(endpoint_url) else None
    return Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30,
                  proxies=proxies)  # fmt: skip


def make_client(settings, service: str) -> Any:
    session = settings.session()
    if session.region_name is None:
        raise AwsError("no AWS region configured: pass --region or set AWS_REGION")
    endpoint = endpoint_for(settings, service)
    return session.client(service, endpoint_url=endpoint, config=client_config(endpoint))


def caller_account(settings) -> str | None:
    """The account the settings' credentials act in (STS), or None when it cannot be asked."""
    try:
        return make_client(settings, "sts").get_caller_identity()["Account"]
    except Exception:  # a note, not a failure: the write itself has already been reported
        return None


class AwsClients:
    """The clients of one deploy session, made on first use."""

    def __init__(self, session=None, endpoint_url: str | None = None, settings=None):
        if session is None:
            import boto3

            session = boto3.Session()
        self.session = session
        self.endpoint_url = endpoint_url
        self.settings = settings
        self.region = session.region_name
        if not self.region:
            raise InvalidInput("no AWS region: give --region or set AWS_REGION")
        self._clients: dict[str, object] = {}

    def client(self, name: str):
        if name not in self._clients:
            endpoint = endpoint_for(self.settings, name) if self.settings else self.endpoint_url
            self._clients[name] = self.session.client(name, endpoint_url=endpoint)
        return self._clients[name]

    @property
    def cfn(self):
        return self.client("cloudformation")

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def aws_call(fn):
    """Turn botocore's failures (credentials, network, refusals) into AwsError."""
    from functools import wraps

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise (aws_error(exc) or AwsError(f"AWS call failed: {exc}")) from None

    return wrapper


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
