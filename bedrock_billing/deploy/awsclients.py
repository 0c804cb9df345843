"""The boto3 clients of one deploy session, and botocore failures turned into AwsError."""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_billing.core.errors import AwsError, InvalidInput
from bedrock_billing.stores.aws import aws_error

BUSY_SUFFIX = "_IN_PROGRESS"


class _Aws:
    """The clients of one session, made on first use."""

    def __init__(self, session=None, endpoint_url: str | None = None):
        if session is None:
            import boto3

            session = boto3.Session()
        self.session = session
        self.endpoint_url = endpoint_url
        self.region = session.region_name
        if not self.region:
            raise InvalidInput("no AWS region: give --region or set AWS_REGION")
        self._clients: dict[str, object] = {}

    def client(self, name: str):
        if name not in self._clients:
            self._clients[name] = self.session.client(name, endpoint_url=self.endpoint_url)
        return self._clients[name]

    @property
    def cfn(self):
        return self.client("cloudformation")

    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


def _aws_call(fn):
    """Turn botocore's failures (credentials, network, refusals) into AwsError."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            # One wording for AWS failures across every command (stores.aws).
            raise (aws_error(exc) or AwsError(f"AWS call failed: {exc}")) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _say(notify: Callable[[str], None] | None, text: str) -> None:
    if notify:
        notify(text)
